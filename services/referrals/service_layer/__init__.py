"""The referrals use cases, one module per aggregate: ``intake`` (a referral arrives),
``cases`` (everything that happens to a case after), ``residents`` (duplicates, merges).
Each use case takes a ``ReferralsUnitOfWork`` and owns its transaction."""
