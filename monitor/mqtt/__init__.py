"""Home Assistant MQTT discovery: the device, its entities and their states on a broker.

Only `config` is imported by the config loader; `publisher` (and paho) load only when the
`mqtt:` section is present.
"""
