"""The aqi job: job.py (fetch, record, staleness), sources.py (Sensor.Community and airrohr
parsing), value_types.py (which sensor value is what), means.py (running means kept under
state_dir) and indices.py (UK DAQI, US EPA, EU EAQI tables)."""
