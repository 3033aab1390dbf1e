"""The fixed POS tag inventory per language, and the mapping of free-form tags onto it.

Chinese (`"zh"`) uses the major classes of jieba's tag set (the ICTCLAS/PKU tags jieba inherits,
reduced to their first letter, with jieba's `eng` for Latin words kept whole; jieba writes
punctuation as `x`). These are the labels `augment.offline_annotator.major_class` produces, so
LLM-annotated and offline-annotated fusion data share one label set. The order is that of the
ICTCLAS class table (content words, function words, affixes), then the PKU classes for
morphemes and set phrases, then `eng`, and `x` (punctuation and other symbols) last.

English (`"en"`) uses the 17 Universal Dependencies UPOS tags, in UD's alphabetical order.

`normalize_tag` reads what LLMs actually write: the codes themselves, fine-grained jieba/PKU tags,
UPOS names, Penn Treebank tags (English), and Chinese or English class names, ignoring case,
width and surrounding whitespace or brackets. A tag that is itself punctuation (`,`, `。`) means
the punctuation class. A tag written with its gloss (`n：名词`, `NOUN (名词)`) maps when every
part maps to the same class. The tables are ours, written from the jieba/ICTCLAS and PKU tag
descriptions, the UD UPOS guidelines and the usual context-free PTB -> UPOS correspondence (IN ->
ADP, TO -> PART, RP -> ADP). Chinese Treebank tags are not read: ignoring case, several of them
(AD, NT, M) are jieba codes with another meaning. Names whose class is ambiguous map to nothing
("conjunction" in English, between CCONJ and SCONJ; "auxiliary" in Chinese, where it may mean
助词 as well as an auxiliary verb): an unknown tag returns None and the caller drops the word.

The glosses are written into the POS prompt (`describe_tags`): changing them changes that prompt,
so bump `augment.prompts.PROMPTS_VERSION` with them.
"""

import re
import unicodedata

from augment.offline_annotator import major_class

TAG_MEANINGS: dict[str, dict[str, str]] = {
    "zh": {
        "n": "名词（含人名、地名、机构名等专名）",
        "t": "时间词",
        "s": "处所词",
        "f": "方位词",
        "v": "动词（含助动词）",
        "a": "形容词",
        "b": "区别词",
        "z": "状态词",
        "r": "代词",
        "m": "数词",
        "q": "量词",
        "d": "副词",
        "p": "介词",
        "c": "连词",
        "u": "助词（的、了、着、过等）",
        "e": "叹词",
        "y": "语气词（吗、呢、吧等）",
        "o": "拟声词",
        "h": "前缀",
        "k": "后缀",
        "g": "语素",
        "i": "成语",
        "l": "习用语",
        "j": "简称略语",
        "eng": "外文词",
        "x": "标点及其他符号",
    },
    "en": {
        "ADJ": "adjective",
        "ADP": "adposition (preposition or postposition)",
        "ADV": "adverb",
        "AUX": "auxiliary verb",
        "CCONJ": "coordinating conjunction",
        "DET": "determiner",
        "INTJ": "interjection",
        "NOUN": "noun",
        "NUM": "numeral",
        "PART": "particle",
        "PRON": "pronoun",
        "PROPN": "proper noun",
        "PUNCT": "punctuation",
        "SCONJ": "subordinating conjunction",
        "SYM": "symbol",
        "VERB": "verb",
        "X": "other",
    },
}
TAG_SETS: dict[str, tuple[str, ...]] = {language: tuple(meanings) for language, meanings in TAG_MEANINGS.items()}
PUNCTUATION_TAG = {"zh": "x", "en": "PUNCT"}

# every tag in jieba's dictionary, its `eng`, and the PKU morpheme tags (Bg, Qg, Yg) jieba lacks: the
# major class is the first letter, `eng` whole; PKU's punctuation tag `w` is jieba's `x`
_ZH_FINE_TAGS = frozenset(
    "a ad ag an b bg c d df dg e eng f g h i j k l m mg mq n ng nr nrfg nrt ns nt nz o p q qg r rg rr rz "
    "s t tg u ud ug uj ul uv uz v vd vg vi vn vq x y yg z zg".split()
)
_ZH_CODES = {tag: major_class(tag) for tag in _ZH_FINE_TAGS} | {"w": "x"}
_ZH_UPOS = {
    "adj": "a", "adp": "p", "adv": "d", "aux": "v", "cconj": "c", "det": "r", "intj": "e", "noun": "n", "num": "m",
    "part": "u", "pron": "r", "propn": "n", "punct": "x", "sconj": "c", "sym": "x", "verb": "v", "x": "x",
}  # fmt: skip
_ZH_NAMES = {
    "名词": "n", "专有名词": "n", "专名": "n", "人名": "n", "地名": "n", "机构名": "n", "机构团体": "n",
    "时间词": "t", "时间名词": "t", "处所词": "s", "处所名词": "s", "方位词": "f", "方位名词": "f",
    "动词": "v", "助动词": "v", "能愿动词": "v", "趋向动词": "v", "名动词": "v", "副动词": "v",
    "形容词": "a", "副形词": "a", "名形词": "a", "区别词": "b", "状态词": "z",
    "代词": "r", "人称代词": "r", "指示代词": "r", "疑问代词": "r", "数词": "m", "数字": "m", "数量词": "m",
    "量词": "q", "副词": "d", "介词": "p", "连词": "c", "助词": "u", "结构助词": "u", "动态助词": "u",
    "时态助词": "u", "叹词": "e", "感叹词": "e", "语气词": "y", "语气助词": "y", "拟声词": "o", "象声词": "o",
    "前缀": "h", "前接成分": "h", "后缀": "k", "后接成分": "k", "语素": "g", "成语": "i", "习用语": "l",
    "习语": "l", "惯用语": "l", "简称": "j", "略语": "j", "简称略语": "j", "缩略语": "j",
    "外文": "eng", "外文词": "eng", "英文": "eng", "英文单词": "eng",
    "标点": "x", "标点符号": "x", "符号": "x", "其他": "x", "非语素字": "x",
    "noun": "n", "proper noun": "n", "time word": "t", "place word": "s", "locative": "f", "localizer": "f",
    "direction word": "f", "verb": "v", "auxiliary verb": "v", "modal verb": "v",
    "adjective": "a", "distinguishing word": "b", "non-predicate adjective": "b", "status word": "z",
    "descriptive word": "z", "pronoun": "r", "determiner": "r", "numeral": "m", "number": "m",
    "measure word": "q", "classifier": "q", "quantifier": "q", "adverb": "d", "preposition": "p",
    "conjunction": "c", "particle": "u", "structural particle": "u", "aspect particle": "u",
    "interjection": "e", "modal particle": "y", "onomatopoeia": "o", "prefix": "h", "suffix": "k",
    "morpheme": "g", "idiom": "i", "idiomatic phrase": "l", "abbreviation": "j", "foreign word": "eng",
    "english": "eng", "punctuation": "x", "punctuation mark": "x", "symbol": "x", "other": "x",
    "pron.": "r", "prep": "p", "prep.": "p", "conj": "c", "conj.": "c", "adj.": "a", "adv.": "d",
    "n.": "n", "v.": "v", "num.": "m", "punc": "x",
}  # fmt: skip
_EN_PTB = {
    "cc": "CCONJ", "cd": "NUM", "dt": "DET", "ex": "PRON", "fw": "X", "in": "ADP", "jj": "ADJ", "jjr": "ADJ",
    "jjs": "ADJ", "ls": "X", "md": "AUX", "nn": "NOUN", "nns": "NOUN", "nnp": "PROPN", "nnps": "PROPN",
    "pdt": "DET", "pos": "PART", "prp": "PRON", "prp$": "PRON", "rb": "ADV", "rbr": "ADV", "rbs": "ADV",
    "rp": "ADP", "to": "PART", "uh": "INTJ", "vb": "VERB", "vbd": "VERB", "vbg": "VERB", "vbn": "VERB",
    "vbp": "VERB", "vbz": "VERB", "wdt": "DET", "wp": "PRON", "wp$": "PRON", "wrb": "ADV", "$": "SYM",
    "#": "SYM", "``": "PUNCT", "''": "PUNCT", "-lrb-": "PUNCT", "-rrb-": "PUNCT", "hyph": "PUNCT",
    "nfp": "PUNCT", "add": "X", "afx": "ADJ", "gw": "X", "xx": "X",
}  # fmt: skip
_EN_NAMES = {
    "adjective": "ADJ", "adposition": "ADP", "preposition": "ADP", "postposition": "ADP", "adverb": "ADV",
    "auxiliary": "AUX", "auxiliary verb": "AUX", "modal": "AUX", "modal verb": "AUX",
    "coordinating conjunction": "CCONJ", "determiner": "DET", "article": "DET", "interjection": "INTJ",
    "noun": "NOUN", "common noun": "NOUN", "numeral": "NUM", "number": "NUM", "cardinal number": "NUM",
    "particle": "PART", "pronoun": "PRON", "proper noun": "PROPN", "punctuation": "PUNCT",
    "punctuation mark": "PUNCT", "subordinating conjunction": "SCONJ", "symbol": "SYM", "verb": "VERB",
    "other": "X", "foreign word": "X", "adj": "ADJ", "adj.": "ADJ", "adv": "ADV", "adv.": "ADV",
    "prep": "ADP", "prep.": "ADP", "pron": "PRON", "pron.": "PRON", "n.": "NOUN", "v.": "VERB",
    "num": "NUM", "num.": "NUM", "punc": "PUNCT", "intj": "INTJ", "interj": "INTJ",
}  # fmt: skip

_EN_UPOS = {tag.lower(): tag for tag in TAG_SETS["en"]}
_GLOSS_SEPARATORS = re.compile(r"[()（）\[\]【】{}<>《》/|:：=]+")


def _key(tag: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", tag).lower().split())


def _lookup(key: str, language: str) -> str | None:
    """The inventory tag of one cleaned tag, from the codes and tables of `language`."""
    if language == "zh":
        return _ZH_CODES.get(key) or _ZH_UPOS.get(key) or _ZH_NAMES.get(key)
    return _EN_UPOS.get(key) or _EN_PTB.get(key) or _EN_NAMES.get(key)


def _is_punctuation(text: str) -> bool:
    return bool(text) and all(unicodedata.category(char).startswith("P") for char in text)


def normalize_tag(tag: str, language: str) -> str | None:
    """`tag` as a tag of `language`'s inventory, or None when it cannot be read without guessing.

    Raises ValueError for a language without an inventory.
    """
    if language not in TAG_SETS:
        raise ValueError(f"no POS tag inventory for language {language!r} (known: {', '.join(TAG_SETS)})")
    key = _key(tag)
    whole = _lookup(key, language)
    if whole is not None:
        return whole
    if _is_punctuation(key.replace(" ", "")):
        return PUNCTUATION_TAG[language]
    parts = [part.strip(" \"'`“”‘’") for part in _GLOSS_SEPARATORS.split(key)]
    readings = {_lookup(part, language) for part in parts if part}
    if len(readings) == 1 and None not in readings:
        return readings.pop()
    return None


def describe_tags(language: str) -> str:
    """The inventory of `language` as prompt text: one `tag: meaning` per line, in inventory order."""
    separator = "：" if language == "zh" else ": "
    return "\n".join(f"{tag}{separator}{meaning}" for tag, meaning in TAG_MEANINGS[language].items())
