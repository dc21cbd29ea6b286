"""Channels: where shoppers talk to the assistant (website chat, later WhatsApp and
Messenger). Each verifies and normalises inbound messages, ties the sender to a
profile identity and forwards the text to Rasa."""
