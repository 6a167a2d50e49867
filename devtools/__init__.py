"""Developer and operator tools: the embedded dev stack (PostgreSQL + Tansu), the demo and
the `upstream` CLI. Installed with the `devtools` extra; the production image leaves it out."""
