"""The MQTT broker: the embedded one (amqtt) and the field configuration for Mosquitto.

- ``epic.broker.embedded.EmbeddedBroker``: amqtt in-process (``epic broker``); what it supports
  and lacks is in that module's docstring.
- ``epic.broker.credentials.write_credentials``: users, passwords and ACL for a deployment
  (``epic broker credentials``).
- ``epic.broker.passwords``, ``epic.broker.acl``: Mosquitto's ``$7$`` password hashes and ACL
  format, read by both brokers.
- ``epic.broker.mosquitto_config.render_mosquitto_conf``: the field ``mosquitto.conf``
  (``broker/mosquitto/``).

Submodules are imported where used, so that importing one does not load amqtt.
"""
