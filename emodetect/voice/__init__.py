"""Speech emotion: audio I/O and log-mel features, corpora, CNNs and the VoiceEmotion pipeline."""
