"""Room theming (CONTRACT.md, "Room theming"): colours, logo and backgrounds of the room and knock pages."""
