#!/usr/bin/env python
"""Django's command-line utility for administrative tasks (``animochat.manage``)."""

from animochat.manage import main

if __name__ == "__main__":
    main()
