from services.referrals.bootstrap import SERVICE
from shared.process import main

raise SystemExit(main(SERVICE))
