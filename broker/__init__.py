"""The MQTT broker: the embedded one (amqtt) and the field configuration for Mosquitto.

``broker.embedded.EmbeddedBroker`` runs amqtt in-process (``epic broker``); ``broker.acl`` and
``broker.passwords`` write and read Mosquitto's ACL and ``$7$`` password formats, which both
brokers accept.
"""
