from services.risk.bootstrap import SERVICE
from shared.service import main

raise SystemExit(main(SERVICE))
