"""Core media handling: video decoding (torchcodec / PyAV) and frame sampling."""
