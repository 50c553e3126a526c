"""Stand-ins for the services the channels talk to, for the tests and ``tocsin demo``:
``smtp_sink.py`` (a local SMTP server that keeps what it receives) and
``push_service.py`` (a local Web Push service that checks and decrypts what a browser
vendor's would). Kept out of ``reach/``: the product's channels never import them;
they ship in the package because the demo runs them from a plain install."""
