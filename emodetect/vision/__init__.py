"""Faces: FER-2013 style data, face CNNs, and the detection pipeline."""
