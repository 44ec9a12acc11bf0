"""The application: capture, pairing, the fusion pipeline, recording, detection overlays and the Qt viewer.

Only ``app.viewer`` imports Qt; everything else also runs headless.
"""
