"""Test helpers shared by every room: real brokers (embedded and Mosquitto) and MQTT waits."""
