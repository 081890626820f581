"""Media at the trust boundary: what may be fetched (fetch), which containers are opened (formats), local
files used as the file checked (localfiles), the archive and its downloads and thumbnails (archive), and
the demo clip (sample)."""
