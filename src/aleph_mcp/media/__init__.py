"""Media at the trust boundary: what may be fetched (fetch), which containers are opened (formats), local
files used as the file checked (localfiles), the archive seam (archive: a local folder; objectstore: an S3
bucket), downloads into it (transfer), thumbnails, and the demo clip (sample). Media made with PyAV for
editing chains: trims (cutting), long clips split into windows and stitched back (windows), before/after
sheets (compare), and the H.264/AAC writing they share (encoding)."""
