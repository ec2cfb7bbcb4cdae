"""Language names users type, turned into the codes Whisper and the server use.

`--language german`, `Deutsch`, `de`, `de-DE` and `DE` all mean `de`. Unknown input gets a
message that says how to write it and, for a near miss, which language was probably meant.
"""

from __future__ import annotations

import difflib

# Whisper's languages (multilingual models) and their English names, as Whisper's own
# tokenizer lists them.
NAMES = {
    "af": "Afrikaans",
    "am": "Amharic",
    "ar": "Arabic",
    "as": "Assamese",
    "az": "Azerbaijani",
    "ba": "Bashkir",
    "be": "Belarusian",
    "bg": "Bulgarian",
    "bn": "Bengali",
    "bo": "Tibetan",
    "br": "Breton",
    "bs": "Bosnian",
    "ca": "Catalan",
    "cs": "Czech",
    "cy": "Welsh",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "et": "Estonian",
    "eu": "Basque",
    "fa": "Persian",
    "fi": "Finnish",
    "fo": "Faroese",
    "fr": "French",
    "gl": "Galician",
    "gu": "Gujarati",
    "ha": "Hausa",
    "haw": "Hawaiian",
    "he": "Hebrew",
    "hi": "Hindi",
    "hr": "Croatian",
    "ht": "Haitian Creole",
    "hu": "Hungarian",
    "hy": "Armenian",
    "id": "Indonesian",
    "is": "Icelandic",
    "it": "Italian",
    "ja": "Japanese",
    "jw": "Javanese",
    "ka": "Georgian",
    "kk": "Kazakh",
    "km": "Khmer",
    "kn": "Kannada",
    "ko": "Korean",
    "la": "Latin",
    "lb": "Luxembourgish",
    "ln": "Lingala",
    "lo": "Lao",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "mg": "Malagasy",
    "mi": "Maori",
    "mk": "Macedonian",
    "ml": "Malayalam",
    "mn": "Mongolian",
    "mr": "Marathi",
    "ms": "Malay",
    "mt": "Maltese",
    "my": "Myanmar",
    "ne": "Nepali",
    "nl": "Dutch",
    "nn": "Nynorsk",
    "no": "Norwegian",
    "oc": "Occitan",
    "pa": "Punjabi",
    "pl": "Polish",
    "ps": "Pashto",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sa": "Sanskrit",
    "sd": "Sindhi",
    "si": "Sinhala",
    "sk": "Slovak",
    "sl": "Slovenian",
    "sn": "Shona",
    "so": "Somali",
    "sq": "Albanian",
    "sr": "Serbian",
    "su": "Sundanese",
    "sv": "Swedish",
    "sw": "Swahili",
    "ta": "Tamil",
    "te": "Telugu",
    "tg": "Tajik",
    "th": "Thai",
    "tk": "Turkmen",
    "tl": "Tagalog",
    "tr": "Turkish",
    "tt": "Tatar",
    "uk": "Ukrainian",
    "ur": "Urdu",
    "uz": "Uzbek",
    "vi": "Vietnamese",
    "yi": "Yiddish",
    "yo": "Yoruba",
    "yue": "Cantonese",
    "zh": "Chinese",
}

# Other names people write: Whisper's aliases, and the languages' own names for the common ones.
ALIASES = {
    "burmese": "my",
    "valencian": "ca",
    "flemish": "nl",
    "haitian": "ht",
    "letzeburgesch": "lb",
    "pushto": "ps",
    "panjabi": "pa",
    "moldavian": "ro",
    "moldovan": "ro",
    "sinhalese": "si",
    "castilian": "es",
    "mandarin": "zh",
    "farsi": "fa",
    "bokmål": "no",
    "bokmal": "no",
    "deutsch": "de",
    "français": "fr",
    "francais": "fr",
    "español": "es",
    "espanol": "es",
    "italiano": "it",
    "português": "pt",
    "portugues": "pt",
    "nederlands": "nl",
    "polski": "pl",
    "svenska": "sv",
    "dansk": "da",
    "norsk": "no",
    "suomi": "fi",
    "türkçe": "tr",
    "turkce": "tr",
    "čeština": "cs",
    "cestina": "cs",
    "magyar": "hu",
    "română": "ro",
    "romana": "ro",
    "ελληνικά": "el",
    "русский": "ru",
    "українська": "uk",
    "中文": "zh",
    "日本語": "ja",
    "한국어": "ko",
    "العربية": "ar",
    "עברית": "he",
    "हिन्दी": "hi",
}

AUTO = "auto"

_BY_NAME = {**{name.casefold(): code for code, name in NAMES.items()}, **ALIASES}


class UnknownLanguage(ValueError):
    """A language that is neither a Whisper code nor a name of one; the message says how to write it."""


def code_for(text: str, *, allow_auto: bool = False) -> str:
    """The Whisper code for a code, a name or a tag such as `de-DE`; raises UnknownLanguage."""
    wanted = text.strip().casefold().replace("_", "-")
    if allow_auto and wanted == AUTO:
        return AUTO
    if wanted in NAMES:
        return wanted
    if wanted in _BY_NAME:
        return _BY_NAME[wanted]
    base = wanted.split("-")[0]  # de-DE, pt-BR, zh-Hans
    if "-" in wanted and base in NAMES:
        return base
    raise UnknownLanguage(_unknown(text, allow_auto))


def _unknown(text: str, allow_auto: bool) -> str:
    close = difflib.get_close_matches(text.strip().casefold(), list(_BY_NAME) + list(NAMES), n=1, cutoff=0.75)
    guess = ""
    if close:
        code = _BY_NAME.get(close[0], close[0])
        guess = f" (did you mean {NAMES[code]}, {code}?)"
    auto = ", or auto to detect it" if allow_auto else ""
    return (
        f"unknown language {text!r}{guess}: use a code such as de or a name such as German{auto} "
        f"(`livetranslate languages` lists them)"
    )


def describe(code: str) -> str:
    """`German (de)`, for messages and lists."""
    return f"{NAMES[code]} ({code})" if code in NAMES else code
