from services.partners.bootstrap import SERVICE
from shared.service import main

raise SystemExit(main(SERVICE))
