"""Triton Inference Server: model repositories from export dirs, a local server launcher, a client backend."""
