"""The Rasa shopping assistant: the Rasa project files live here; ``actions`` runs in
the main environment (rasa-sdk), ``nlu`` and ``broker`` run inside Rasa's own."""
