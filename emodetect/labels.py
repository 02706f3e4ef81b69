"""Label sets shared by every modality, and the synonyms that map dataset names onto them."""

from __future__ import annotations

from emodetect.errors import InputError

# FER-2013 order: the ONNX contract and every face model use it.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Folder names and other datasets' spellings, mapped onto EMOTIONS.
SYNONYMS: dict[str, str] = {
    "anger": "angry", "angry": "angry", "mad": "angry",
    "disgust": "disgust", "disgusted": "disgust", "contempt": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "happily": "happy",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise",
    "neutral": "neutral", "calm": "neutral",
}

# FER+ vote columns, in the order of fer2013new.csv, and the FER-2013 class each votes for.
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
    "unknown", "NF",
)


# Speech corpora have classes no face data set has; voice models keep them as their own labels,
# where a face data set's "calm" folder is read as neutral.
VOICE_ONLY: tuple[str, ...] = ("calm", "boredom")


def canonical_emotion(name: str, keep: tuple[str, ...] = ()) -> str:
    """Map a dataset's label name onto EMOTIONS (or onto one of `keep`, such as VOICE_ONLY, kept as
    its own class); raise naming the label when it is unknown."""
    key = name.strip().lower()
    if key in keep:
        return key
    if key not in SYNONYMS:
        raise InputError(f"unknown emotion label {name!r}; known: {sorted({*SYNONYMS, *keep})}")
    return SYNONYMS[key]


# GoEmotions' 27 emotions + neutral grouped as in the paper's Ekman mapping (Demszky et al. 2020),
# keyed by the face model's names so text and face results line up.
GOEMOTIONS_EKMAN: dict[str, tuple[str, ...]] = {
    "angry": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "happy": ("joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism", "relief",
              "pride", "admiration", "desire", "caring"),
    "sad": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}
