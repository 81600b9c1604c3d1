"""The jobs, one package each. registry.py lists them (JobsConfig); base.py holds the Job
Protocol and `build_job`. Kept empty: importing the registry must not load any job's code."""
