"""waqr.sim: a local WhatsApp Web simulator that an unmodified whatsmeow/neonize client links to.

Standalone by design: nothing in here imports the rest of ``waqr`` but the protocol pieces it
shares with the connection doctor (``waqr.waproto``: proto, xeddsa, noise, certchain). The
protocol facts it follows are in ``shared/docs/wa-protocol.md`` (cited as "doc §N" in comments).

Modules, bottom up:
  tokens        the WABinary token dictionaries (dictionary version 3)
  node, binary  WABinary ``Node``/``JID`` and their encoding
  certs         the Noise root / intermediate / leaf certificate chain
  pairing       QR parsing and the ADV device identity the phone signs
  paircode      the pairing-code cryptography (phone side)
  chaos         seeded chaos: delayed frames, unanswered iqs, connections closed early
  state         the simulated world: phones, linked devices, live connections, fault plan
  server        one client connection: handshake, login, logout; iqs: its answers to iqs
  registration  a new device: pair-device refs, pair-success, restart; linkcode: by code
  tls, frontdoor, rootkey   the network front door and the root-key-patched neonize copy
  signal        the Signal protocol as WhatsApp's libsignal speaks it, and simulated contacts
  relay         device lists, prekey bundles and message relay between a linked device and contacts
  faults        the JSON shapes of GET/POST /faults and how they change the world
  phone         HTTP control API (scan a QR, type a code, log a device out, set faults)
  app           ``Simulator``: front door + server + control API, and the ``waqr sim`` entry point
"""
