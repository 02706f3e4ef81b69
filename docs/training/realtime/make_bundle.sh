#!/usr/bin/env bash
# The bundled real-time face model: vgg_fer_small (half the widths of vgg_fer, a quarter of its
# arithmetic) seen once (no flip TTA, which would double the cost); same recipe otherwise.
NAME=realtime MODEL=vgg_fer_small EPOCHS=45 TTA=--no-flip-tta \
  exec bash "$(dirname "$0")/../default/make_bundle.sh"
