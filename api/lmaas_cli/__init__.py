"""The `lmaas` command (`main`): one entry point that hands each subcommand to its role's package,
imported only when that subcommand runs."""
