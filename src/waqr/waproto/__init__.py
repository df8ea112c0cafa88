"""waqr.waproto: WhatsApp Web protocol pieces shared by the simulator and the connection doctor.

No application logic here: only protocol facts (doc = ``shared/docs/wa-protocol.md``).

  proto      neonize's generated protobuf classes, imported without loading neonize's Go library
  xeddsa     Curve25519 ("XEdDSA-style") signatures as libsignal checks them
  noise      the Noise_XX handshake state (both roles) and the transport cipher
  certchain  WhatsApp's root key and the client's check of the server's certificate chain
"""
