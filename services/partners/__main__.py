from services.partners.bootstrap import SERVICE
from shared.process import main

raise SystemExit(main(SERVICE))
