"""A deterministic evaluator that needs no network and no model.

It runs when no LLM provider is configured, and it says so in the result's
provenance: it is never a silent stand-in for the model. Each rubric criterion
is scored from evidence found in the text with regular expressions (skills the
opening asks for, years of experience, quantified achievements, testing,
resilience and documentation signals), mapped to 1-5 with fixed thresholds.
Rationales name the evidence found and what is missing, so a reviewer can see
why a score is what it is.

Criteria are matched by key, then by words in their key and name; a criterion
nothing here knows is scored by how many words of its name and scoring guide
the document uses. Texts are never logged.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from evaluations.pipeline import scoring
from evaluations.pipeline.chain import ChainInput, ChainResult, Criterion
from evaluations.pipeline.scoring import CriterionScore

MODEL: Final = "offline-heuristics-v1"
HEURISTICS_VERSION: Final = "offline-2026-12-01.1"
# Evidence beyond the first pages adds little and would only cost time.
MAX_ANALYSED_CHARS: Final = 200_000
MAX_LISTED: Final = 12


def _pattern(*aliases: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)(?:" + "|".join(aliases) + r")(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class Term:
    label: str
    area: str
    pattern: re.Pattern[str]
    umbrella: bool = False


def _term(area: str, label: str, *aliases: str, umbrella: bool = False) -> Term:
    return Term(label=label, area=area, pattern=_pattern(*aliases), umbrella=umbrella)


# Areas group interchangeable skills: a CV with MySQL instead of the PostgreSQL
# the posting names still shows database experience.
TECH_TERMS: Final = (
    _term("languages", "Python", "python"),
    _term("languages", "Go", r"(?-i:Go)(?!-to)", "golang"),
    _term("languages", "Java", r"java(?!\s*script)"),
    _term("languages", "Kotlin", "kotlin"),
    _term("languages", "Rust", "rust"),
    _term("languages", "Ruby", "ruby"),
    _term("languages", "PHP", "php"),
    _term("languages", "C#", r"c\#"),
    _term("languages", "C++", r"c\+\+"),
    _term("languages", "JavaScript", "javascript", r"(?-i:JS)"),
    _term("languages", "TypeScript", "typescript"),
    _term("languages", "SQL", "sql"),
    _term("frameworks", "Django", "django"),
    _term("frameworks", "FastAPI", "fastapi"),
    _term("frameworks", "Flask", "flask"),
    _term("frameworks", "Node.js", r"node\.?js", r"express\.?js"),
    _term("frameworks", "Spring", r"spring\s+(?:boot|framework)"),
    _term("frameworks", "Rails", r"ruby\s+on\s+rails"),
    _term(
        "apis",
        "REST APIs",
        "restful",
        r"rest(?:ful)?\s*(?:apis?|services?|endpoints?|interfaces?)",
        r"(?-i:REST)",
    ),
    _term("apis", "GraphQL", "graphql"),
    _term("apis", "gRPC", "grpc"),
    _term("apis", "Microservices", "micro-?services?"),
    _term("databases", "PostgreSQL", "postgres(?:ql)?", "psql"),
    _term("databases", "MySQL", "mysql", "mariadb"),
    _term("databases", "MongoDB", "mongo(?:db)?"),
    _term("databases", "Elasticsearch", "elasticsearch", "opensearch"),
    _term("databases", "DynamoDB", "dynamodb"),
    _term("queues", "Kafka", "kafka"),
    _term("queues", "Redpanda", "redpanda"),
    _term("queues", "RabbitMQ", "rabbitmq"),
    _term("queues", "Redis", "redis"),
    _term("queues", "Celery", "celery"),
    _term(
        "queues",
        "Message queues",
        r"message\s+(?:queues?|brokers?)",
        r"(?:job|task)[- ]queues?",
        r"event\s+streaming",
        "pub/?sub",
        "sqs",
        umbrella=True,
    ),
    _term("cloud", "AWS", "aws", "amazon web services"),
    _term("cloud", "GCP", "gcp", "google cloud(?: platform)?"),
    _term("cloud", "Azure", "azure"),
    _term("cloud", "Docker", "docker(?:-compose)?", r"containeri[sz]\w*"),
    _term("cloud", "Kubernetes", "kubernetes", "k8s", "eks", "gke", "helm"),
    _term("cloud", "Terraform", "terraform"),
    _term(
        "cloud",
        "CI/CD",
        "ci/cd",
        "ci-cd",
        r"continuous\s+(?:integration|delivery|deployment)",
        "github actions",
        "gitlab ci",
        "jenkins",
        "circleci",
    ),
    _term(
        "ai",
        "LLMs",
        "llms?",
        r"large\s+language\s+models?",
        r"gpt-?[0-9o.]*",
        "chatgpt",
        "claude",
        "gemini",
        "llama",
        "mistral",
    ),
    _term("ai", "OpenAI", "openai"),
    _term("ai", "RAG", r"(?-i:RAG)", r"retrieval[- ]augmented(?:\s+generation)?"),
    _term("ai", "Embeddings", "embeddings?"),
    _term(
        "ai",
        "Vector databases",
        r"vector\s+(?:databases?|dbs?|stores?|search)",
        "pgvector",
        "pinecone",
        "qdrant",
        "weaviate",
        "chroma(?:db)?",
        "milvus",
        "faiss",
    ),
    _term(
        "ai",
        "Prompt engineering",
        r"prompt\s+(?:engineering|design)",
        "prompting",
        "few-shot",
    ),
    _term(
        "ai",
        "LLM chaining",
        r"(?:llm|prompt)\s+chain(?:s|ing)?",
        "chaining",
        "langchain",
        "llama-?index",
    ),
    _term(
        "ai",
        "Machine learning",
        r"machine\s+learning",
        r"(?-i:ML)",
        r"deep\s+learning",
        "pytorch",
        "tensorflow",
        "scikit-learn",
        "nlp",
    ),
    _term(
        "testing",
        "Testing",
        r"(?:unit|integration|end-to-end|e2e|automated)\s+tests?",
        r"(?:unit|integration|automated)\s+testing",
        "test automation",
        "pytest",
        "jest",
        "tdd",
        "test-driven",
    ),
    _term(
        "observability",
        "Observability",
        "observability",
        "prometheus",
        "grafana",
        "opentelemetry",
        "datadog",
    ),
    _term("architecture", "Distributed systems", r"distributed\s+systems?"),
    _term("frontend", "React", r"react(?:\.js)?"),
    _term("frontend", "Vue", r"vue(?:\.js)?"),
    _term("frontend", "Angular", "angular"),
    _term("frontend", "HTML", "html5?"),
    _term("frontend", "CSS", "css3?", "sass", "scss", "tailwind(?:\\s*css)?"),
    _term("tools", "Git", "git", "github", "gitlab"),
    _term("tools", "Linux", "linux"),
)

# Acronyms that look technical but say nothing about a candidate's skills.
_GENERIC_ACRONYMS_TEXT: Final = (
    "API APIS HTTP HTTPS JSON XML URL UI UX IT AI CV HR ID OK USA UK EU CEO CTO VP "
    "FAQ PDF DOCX KPI KPIS OKR OKRS SAAS TBD ASAP PS NB B2B B2C AND THE"
)
_GENERIC_ACRONYMS: Final = frozenset(_GENERIC_ACRONYMS_TEXT.split())

_STOPWORDS_TEXT: Final = """
a about above after again against all also am an and any are as at be because been
before being below between both but by can could did do does doing down during each
either else every few for from further had has have having he her here hers him his
how however i if in into is it its itself just least less like made make many may me
might more most much must my no nor not now of off on once only or other our ours
out over own per rather same she should so some such than that the their theirs them
then there these they this those through to too under until up upon us use used uses
using very via was we well were what when where whether which while who whom whose
why will with within without would yes yet you your yours able across along already
always among another around based being each etc even ever first given good great
including into less lot new next often one ones part perhaps put really see seen
shall since still take taken things think three two way ways work works year years
candidate candidates criterion criteria score scores scoring guide minimal poor
average adequate excellent strong partial none basic clear good solid demonstrated
missing
"""
_STOPWORDS: Final = frozenset(_STOPWORDS_TEXT.split())

_WORD: Final = re.compile(r"[a-z][a-z0-9+#]*(?:[-./][a-z0-9+#]+)*")
_RAW_TOKEN: Final = re.compile(r"[A-Za-z][A-Za-z0-9+#.]*[A-Za-z0-9+#]")


# --- Text helpers ------------------------------------------------------------


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _content_words(text: str, min_length: int = 4) -> list[str]:
    """Distinct stemmed content words, in order of first appearance."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        word = word.strip(".-/")
        if len(word) >= min_length and word not in _STOPWORDS:
            seen.setdefault(_stem(word), None)
    return list(seen)


def _listing(items: Sequence[str], limit: int = MAX_LISTED) -> str:
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" and {len(items) - limit} more"


def _threshold(value: float, cuts: tuple[float, float, float, float]) -> int:
    """1-5 from `value`: each cut reached adds a point."""
    return 1 + sum(1 for cut in cuts if value >= cut)


def _excerpt(statement: str, focus: re.Match[str], limit: int = 100) -> str:
    """Up to `limit` characters of `statement` around the `focus` match."""
    if len(statement) <= limit:
        return statement
    start = max(0, min(focus.start() - limit // 3, len(statement) - limit))
    if start:
        space = statement.find(" ", start)
        start = space + 1 if 0 <= space < focus.start() else start
    end = start + limit
    if end < len(statement):
        space = statement.rfind(" ", focus.end(), end)
        end = space if space != -1 else end
    prefix = "..." if start else ""
    suffix = "..." if end < len(statement) else ""
    return prefix + statement[start:end].strip() + suffix


@dataclass(frozen=True)
class _Signal:
    label: str
    pattern: re.Pattern[str]


def _signal(label: str, *aliases: str) -> _Signal:
    return _Signal(label=label, pattern=_pattern(*aliases))


_NEGATION: Final = re.compile(
    r"(?:\b(?:not|no|never|without|lacks?|lacking|missing)\b|n't\b)", re.IGNORECASE
)
# A clause ends at punctuation, a blank line or a new bullet; a plain line
# break is usually just a wrapped line.
_CLAUSE_END: Final = re.compile(r"[.!?;:,]|\n\s*\n|\n\s*(?:[-*\u2022]|\d{1,2}[.)])\s")
_NEGATION_WINDOW: Final = 40


def _mentions(pattern: re.Pattern[str], text: str) -> bool:
    """Whether `pattern` occurs in `text` other than after a negation.

    "I did not add a job queue" must not count as a job queue; a negation is
    looked for only earlier in the same clause, just before the match.
    """
    for match in pattern.finditer(text):
        window = text[max(0, match.start() - _NEGATION_WINDOW) : match.start()]
        clause = _CLAUSE_END.split(window)[-1]
        if not _NEGATION.search(clause):
            return True
    return False


def _statements(text: str) -> list[str]:
    """Bullets and sentences with wrapped lines joined back together.

    Text from PDFs and fixed-width documents breaks long bullets across lines;
    a line continues the previous one unless it starts a bullet, follows a
    blank line, or the previous line ended a sentence or was short (a heading).
    """
    statements: list[str] = []
    current = ""
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line:
            if current:
                statements.append(current)
            current = ""
            continue
        continues = (
            current
            and not _BULLET.match(line)
            and not current.endswith((".", "!", "?", ":"))
            and len(current) >= 40
        )
        if continues:
            current = f"{current} {line}"
        else:
            if current:
                statements.append(current)
            current = line
    if current:
        statements.append(current)
    return statements


_BULLET: Final = re.compile(r"(?:[-*\u2022\u25aa\u25cf\u25e6\u2023]|\d{1,2}[.)])\s")


def _signals_found(
    text: str, signals: Iterable[_Signal]
) -> tuple[list[str], list[str]]:
    found: list[str] = []
    missing: list[str] = []
    for signal in signals:
        (found if _mentions(signal.pattern, text) else missing).append(signal.label)
    return found, missing


# --- The documents -----------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    cv: str
    project: str
    job_description: str
    brief: str
    today: datetime.date
    required_terms: tuple[Term, ...]
    cv_terms: tuple[Term, ...]
    tech_match: float


@dataclass(frozen=True)
class _Assessment:
    score: int
    rationale: str


def _terms_in(text: str, terms: Iterable[Term]) -> tuple[Term, ...]:
    return tuple(term for term in terms if _mentions(term.pattern, text))


def _extra_required_terms(job_description: str) -> tuple[Term, ...]:
    """Technical-looking words of the posting that the vocabulary lacks.

    Acronyms (SQS), words with inner capitals (GraphQL) and words with digits
    or symbols (S3, C++) are kept; ordinary words are not, as they say little
    about skills.
    """
    extras: dict[str, Term] = {}
    for token in _RAW_TOKEN.findall(job_description):
        acronym = re.fullmatch(r"[A-Z]{2,6}s?", token) is not None
        inner_capital = re.search(r"[a-z][A-Z]", token) is not None
        symbolic = re.search(r"[0-9+#.]", token) is not None
        if not (acronym or inner_capital or symbolic):
            continue
        upper = token.upper()
        if upper in _GENERIC_ACRONYMS or upper.rstrip("S") in _GENERIC_ACRONYMS:
            continue
        if any(term.pattern.search(token) for term in TECH_TERMS):
            continue
        key = token.lower()
        if key in extras:
            continue
        alias = re.escape(token)
        if acronym and len(token) <= 3:
            alias = f"(?-i:{alias})"
        extras[key] = _term("other", token, alias)
    return tuple(extras.values())


def _tech_match(context_cv: str, job_description: str) -> tuple[float, str]:
    """How well the CV covers the posting's skills (0-1), with a rationale."""
    required = _terms_in(job_description, TECH_TERMS) + _extra_required_terms(
        job_description
    )
    if not required:
        return _generic_overlap(job_description, context_cv, "the job description")
    cv_terms = _terms_in(context_cv, TECH_TERMS)
    found = [
        term
        for term in required
        if term in cv_terms
        or _mentions(term.pattern, context_cv)
        # A general skill is shown by any specific one of its area.
        or (term.umbrella and any(t.area == term.area for t in cv_terms))
    ]
    missing = [term for term in required if term not in found]
    areas = list(dict.fromkeys(t.area for t in required if t.area != "other"))
    area_points = 0.0
    for area in areas:
        if any(term.area == area for term in found):
            area_points += 1
        elif any(term.area == area for term in cv_terms):
            area_points += 0.5
    area_coverage = area_points / len(areas) if areas else 0.0
    term_coverage = len(found) / len(required)
    value = 0.6 * area_coverage + 0.4 * term_coverage
    parts = []
    if found:
        parts.append(
            f"Found: {_listing([t.label for t in found])} ({len(found)} of "
            f"{len(required)} skills the role asks for)."
        )
    else:
        parts.append("None of the skills the role asks for appear in the CV.")
    if missing:
        parts.append(f"Missing from the CV: {_listing([t.label for t in missing])}.")
    others = [t.label for t in cv_terms if t not in found]
    if others:
        parts.append(f"Other skills in the CV: {_listing(others)}.")
    return value, " ".join(parts)


def _generic_overlap(reference: str, text: str, described_as: str) -> tuple[float, str]:
    words = _content_words(reference)
    if not words:
        return 0.0, f"There is nothing in {described_as} to compare against."
    present = set(_content_words(text, min_length=3))
    found = [word for word in words if word in present]
    missing = [word for word in words if word not in present]
    coverage = len(found) / len(words)
    parts = [
        f"Uses {len(found)} of {len(words)} key terms from {described_as}"
        + (f": {_listing(found)}." if found else ".")
    ]
    if missing:
        parts.append(f"Not found: {_listing(missing)}.")
    return coverage, " ".join(parts)


# --- CV criteria -------------------------------------------------------------

# Below these technical matches, experience and achievements are taken to lie
# outside the role's field and are capped accordingly.
_UNRELATED_MATCH: Final = 0.12
_WEAK_MATCH: Final = 0.25


def _technical_skills(context: _Context, criterion: Criterion) -> _Assessment:
    value, rationale = _tech_match(context.cv, context.job_description)
    score = _threshold(value, (0.15, 0.35, 0.55, 0.75))
    ai_asked = any(term.area == "ai" for term in context.required_terms)
    ai_shown = any(term.area == "ai" for term in context.cv_terms)
    if score == 5 and ai_asked and not ai_shown:
        score = 4
        rationale += " No hands-on AI/LLM work is shown."
    return _Assessment(score, rationale)


_YEAR: Final = r"(?:19[6-9]\d|20[0-9]\d)"
_MONTH: Final = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE_RANGE: Final = re.compile(
    rf"(?:(?P<m1>{_MONTH})\s+|(?P<n1>\d{{1,2}})[/.])?(?P<y1>{_YEAR})"
    r"\s*(?:-|\u2013|\u2014|to|until|till)\s*"
    rf"(?:(?:(?P<m2>{_MONTH})\s+|(?P<n2>\d{{1,2}})[/.])?(?P<y2>{_YEAR})"
    r"|(?P<now>present|now|current|today|date|ongoing))",
    re.IGNORECASE,
)
_NUMBER_WORDS_TEXT: Final = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen"
)
_NUMBER_WORDS: Final = {
    word: value for value, word in enumerate(_NUMBER_WORDS_TEXT.split())
}
_YEARS_CLAIM: Final = re.compile(
    r"(?P<count>\d{1,2}(?:\.\d)?|"
    + "|".join(_NUMBER_WORDS)
    + r")\+?\s*(?:years?|yrs?)(?:['\u2019]s?)?\s+(?:of\s+)?(?:[a-z/-]+\s+){0,3}?"
    r"(?:experience|engineering|development|building)",
    re.IGNORECASE,
)
_EDUCATION: Final = _pattern(
    "university",
    "college",
    "school",
    "bachelor'?s?",
    "master'?s?",
    r"b\.?sc",
    r"m\.?sc",
    "phd",
    "degree",
    "diploma",
    "bootcamp",
    "education",
)
_SENIOR: Final = _pattern(
    "senior",
    r"(?:tech|team|technical|engineering)\s+lead",
    "lead engineer",
    "lead developer",
    "principal",
    r"staff\s+(?:engineer|developer)",
    "architect",
    r"head\s+of\s+engineering",
    "engineering manager",
    "cto",
)
_JUNIOR: Final = _pattern(
    "junior",
    "intern",
    "internship",
    "trainee",
    "graduate",
    "entry[- ]level",
    "apprentice",
)
_MONTH_NAMES_TEXT: Final = "jan feb mar apr may jun jul aug sep oct nov dec"
_MONTHS: Final = {
    name: number for number, name in enumerate(_MONTH_NAMES_TEXT.split(), start=1)
}


def _month(name: str | None, number: str | None) -> int | None:
    if name:
        return _MONTHS.get(name[:3].lower())
    if number and 1 <= int(number) <= 12:
        return int(number)
    return None


def _employment_years(text: str, today: datetime.date) -> float:
    """Years covered by the CV's date ranges, overlaps merged, schooling left out."""
    now = today.year + (today.month - 1) / 12
    intervals: list[tuple[float, float]] = []
    for line in text.splitlines():
        if _EDUCATION.search(line):
            continue
        for match in _DATE_RANGE.finditer(line):
            start_month = _month(match["m1"], match["n1"])
            start = int(match["y1"]) + ((start_month or 1) - 1) / 12
            if match["now"]:
                end = now
            else:
                end_month = _month(match["m2"], match["n2"])
                end = int(match["y2"]) + ((end_month or 1) - 1) / 12
            end = min(end, now)
            if end > start:
                intervals.append((start, end))
    total = 0.0
    current_start: float | None = None
    current_end = 0.0
    for start, end in sorted(intervals):
        if current_start is None or start > current_end:
            if current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_start is not None:
        total += current_end - current_start
    return total


def _claimed_years(text: str) -> float:
    best = 0.0
    for match in _YEARS_CLAIM.finditer(text):
        count = match["count"].lower()
        value = float(_NUMBER_WORDS.get(count, 0)) if count.isalpha() else float(count)
        if value <= 45:
            best = max(best, value)
    return best


def _distinct_words(words: Iterable[str]) -> str:
    return _listing(list(dict.fromkeys(" ".join(w.lower().split()) for w in words)), 4)


def _experience_level(context: _Context, criterion: Criterion) -> _Assessment:
    ranged = _employment_years(context.cv, context.today)
    claimed = _claimed_years(context.cv)
    years = max(ranged, claimed)
    score = _threshold(years, (1, 2, 3, 5))
    parts: list[str] = []
    if years >= 0.5:
        source = "stated" if claimed >= ranged else "from the dates of the roles listed"
        rounded = round(years)
        unit = "year" if rounded == 1 else "years"
        parts.append(f"About {rounded} {unit} of experience ({source}).")
    elif years:
        parts.append("Less than a year of experience.")
    else:
        parts.append("No years of experience or dated roles found in the CV.")
    senior = [match.group(0) for match in _SENIOR.finditer(context.cv)]
    junior = [match.group(0) for match in _JUNIOR.finditer(context.cv)]
    if senior:
        score = min(5, max(score + 1, 3))
        parts.append(f"Seniority signals: {_distinct_words(senior)}.")
    elif junior:
        score = min(score, 3)
        parts.append(f"Junior-level signals: {_distinct_words(junior)}.")
    if context.tech_match < _UNRELATED_MATCH and score > 1:
        score = 1
        parts.append("The experience shown is outside this role's field.")
    elif context.tech_match < _WEAK_MATCH and score > 2:
        score = 2
        parts.append("Little of the experience shown is in this role's field.")
    return _Assessment(score, " ".join(parts))


_METRIC: Final = re.compile(
    r"\d+(?:[.,]\d+)?\s*%"
    r"|\b\d+(?:\.\d+)?\s*[x\u00d7](?!\w)"
    r"|[$€£]\s?\d"
    r"|\b\d+(?:[.,]\d+)?\s*(?:k|m|bn|million|billion|thousand)?\+?\s*"
    r"(?:users|customers|clients|requests|req/s|rps|qps|transactions|events|"
    r"messages|jobs|downloads|merchants|orders|documents|records)\b"
    r"|\bfrom\s+\d+(?:[.,]\d+)?\s*\w*\s+(?:to|down to)\s+\d"
    r"|\b\d+(?:[.,]\d+)?\s*(?:ms|milliseconds|seconds|minutes|hours)\b",
    re.IGNORECASE,
)
_IMPACT: Final = _pattern(
    "reduc(?:ed|ing)",
    "increas(?:ed|ing)",
    "improv(?:ed|ing)",
    "cut",
    "grew",
    "boost(?:ed)?",
    "saved",
    "scaled",
    "accelerated",
    "decreased",
    "lowered",
    "doubled",
    "tripled",
    "halved",
    "launched",
    "shipped",
    "delivered",
    "optimi[sz]ed",
    "automated",
    "migrated",
)


def _relevant_achievements(context: _Context, criterion: Criterion) -> _Assessment:
    quantified: list[str] = []
    qualitative = 0
    for statement in _statements(context.cv):
        metric = _METRIC.search(statement)
        if metric:
            quantified.append(_excerpt(statement.lstrip("-*\u2022 "), metric))
        elif _IMPACT.search(statement):
            qualitative += 1
    points = len(quantified) + 0.5 * min(qualitative, 4)
    score = _threshold(points, (1, 2, 3, 5))
    if quantified:
        examples = "; ".join(f'"{excerpt}"' for excerpt in quantified[:3])
        rationale = (
            f"{len(quantified)} quantified achievement"
            f"{'s' if len(quantified) != 1 else ''}, e.g. {examples}."
        )
    else:
        rationale = "No quantified results (percentages, volumes, latency) found."
    if qualitative:
        rationale += f" {qualitative} further impact statements without numbers."
    if context.tech_match < _UNRELATED_MATCH and score > 2:
        score = 2
        rationale += " The achievements are outside this role's field."
    elif context.tech_match < _WEAK_MATCH and score > 3:
        score = 3
        rationale += " Few achievements relate to this role's field."
    return _Assessment(score, rationale)


_COLLABORATION_SIGNALS: Final = (
    _signal(
        "collaboration",
        r"collaborat\w*",
        r"cross-functional",
        r"worked\s+closely",
        r"partner(?:ed|ing)\s+with",
        "teamwork",
        "pair programming",
        "stakeholders?",
    ),
    _signal(
        "leadership",
        r"led\b",
        r"leading\s+(?:a|the)",
        r"(?:tech|team|technical)\s+lead",
        r"managed\s+(?:a\s+)?team",
        "ownership",
        r"owned\s+(?:the|a)",
    ),
    _signal(
        "mentoring",
        r"mentor\w*",
        r"coach(?:ed|ing)",
        r"onboard(?:ed|ing)",
        r"trained\s+(?:\w+\s+){0,2}(?:engineers|developers|juniors|new\s+hires|staff|apprentices|colleagues)",
    ),
    _signal(
        "communication",
        r"communicat\w*",
        r"present(?:ed|ing|ations?)",
        r"talks?\s+(?:at|on)",
        "speaker",
        r"technical\s+writing",
        r"blog\s+posts?",
        r"design\s+docs?",
        "rfcs?",
        r"wrote\s+(?:the\s+)?documentation",
    ),
    _signal(
        "learning mindset",
        r"(?<!machine\s)(?<!deep\s)learn(?:ing|ed|er|s)?",
        "curious",
        "self-taught",
        r"courses?",
        r"certifi\w+",
        r"workshops?",
        r"conferences?",
        r"open[- ]source",
        r"hackathons?",
    ),
    _signal(
        "team practices",
        "agile",
        "scrum",
        "kanban",
        r"code\s+reviews?",
        r"retrospectives?",
        r"sprints?",
    ),
)


def _cultural_fit(context: _Context, criterion: Criterion) -> _Assessment:
    found, missing = _signals_found(context.cv, _COLLABORATION_SIGNALS)
    score = _threshold(len(found), (1, 3, 4, 5))
    if found:
        rationale = f"Signals found: {', '.join(found)}."
    else:
        rationale = "No collaboration, communication or leadership signals found."
    if missing:
        rationale += f" Not shown: {', '.join(missing)}."
    if context.tech_match < _UNRELATED_MATCH and score > 3:
        score = 3
        rationale += " None of it is shown in an engineering team."
    return _Assessment(score, rationale)


# --- Project criteria --------------------------------------------------------

_REQUIRED_PIECES: Final = (
    _signal(
        "API endpoints",
        r"/upload",
        r"/evaluate",
        r"/result",
        r"endpoints?",
        r"rest\s+api",
        r"(?:post|get)\s+/",
    ),
    _signal(
        "document upload and text extraction",
        r"upload(?:s|ed|ing)?\s+(?:the\s+|a\s+)?(?:cv|files?|documents?|reports?)",
        "pdf",
        "docx",
        r"text\s+extraction",
        r"extract(?:s|ed|ing)?\s+(?:the\s+)?text",
        "pypdf",
        "python-docx",
    ),
    _signal(
        "asynchronous job queue",
        r"queues?",
        "kafka",
        "redpanda",
        "rabbitmq",
        "celery",
        "sqs",
        r"background\s+(?:jobs?|tasks?|workers?|processing)",
        "asynchronous(?:ly)?",
        "async",
    ),
    _signal(
        "LLM integration",
        "llms?",
        r"gpt-?[0-9o.]*",
        "openai",
        r"language\s+models?",
        "claude",
        "gemini",
        "mistral",
        "llama",
        "groq",
        "openrouter",
        "ollama",
    ),
    _signal(
        "LLM chaining",
        r"(?<!supply\s)chain(?:s|ed|ing)?",
        "langchain",
        "multi-step",
        r"(?:three|3|two|2|multiple)[- ](?:step|stage)s?",
        r"step\s+(?:1|one)",
    ),
    _signal(
        "RAG and retrieval",
        r"(?-i:RAG)",
        r"retriev\w+",
        r"vector\s+(?:db|database|store|search)",
        "embeddings?",
        "pgvector",
        "qdrant",
        "pinecone",
        "chroma(?:db)?",
        r"full-text\s+search",
        r"semantic\s+search",
        r"context\s+injection",
    ),
    _signal(
        "prompt design",
        r"prompts?",
        r"system\s+(?:prompt|message)",
        "few-shot",
    ),
    _signal(
        "structured output and validation",
        r"json\s+(?:schema|mode|output|object)",
        r"structured\s+(?:json\s+)?output",
        r"schema\s+validation",
        r"validat\w+\s+(?:the\s+)?(?:json|output|schema|answers?|responses?)",
        "pydantic",
    ),
    _signal(
        "scoring",
        "cv_match_rate",
        "project_score",
        r"match\s+rate",
        r"weighted\s+(?:average|score|sum|rubric)",
        r"scoring\s+rubric",
        "rubrics?",
    ),
    _signal(
        "job status and results",
        r"job\s+status",
        r"status\s+(?:endpoint|field)",
        "queued",
        "polling",
        r"/result",
    ),
)

_CODE_QUALITY_SIGNALS: Final = (
    _signal(
        "tests",
        r"(?:unit|integration|end-to-end|e2e|api|automated)\s+tests?",
        r"test\s+(?:suite|coverage|cases?)",
        "pytest",
        "unittest",
        "jest",
        r"go\s+test",
        "tdd",
        r"tests?\s+(?:cover|for\s+the|pass)",
    ),
    _signal(
        "test depth",
        r"integration\s+tests?",
        "end-to-end",
        "e2e",
        r"\d+\s*%\s*(?:test\s+)?coverage",
        r"coverage\s+of\s+\d+",
        "property-based",
        "hypothesis",
        r"contract\s+tests?",
        r"fake\s+(?:server|llm|provider)",
        r"mock(?:s|ed|ing)?",
    ),
    _signal(
        "modular structure",
        "modular",
        r"modules?",
        r"separation\s+of\s+concerns",
        "layered",
        r"service\s+layer",
        r"repository\s+pattern",
        r"clean\s+architecture",
        "hexagonal",
        r"dependency\s+injection",
        r"single\s+responsibility",
        r"decoupl\w+",
        "reusable",
    ),
    _signal(
        "typing",
        r"type\s+hints?",
        "typed",
        r"type\s+annotations?",
        "mypy",
        "pyright",
        "pydantic",
        "typescript",
        "dataclasses?",
    ),
    _signal(
        "linting and formatting",
        r"lint\w*",
        "ruff",
        "flake8",
        "black",
        "isort",
        "eslint",
        "prettier",
        "pre-commit",
        "gofmt",
        "golangci-lint",
    ),
    _signal(
        "review practices",
        r"code\s+reviews?",
        r"pull\s+requests?",
        r"refactor\w*",
        r"style\s+guide",
    ),
)

_RESILIENCE_SIGNALS: Final = (
    _signal("retries", r"retr(?:y|ies|ied|ying)"),
    _signal("backoff", "backoff", "back-off", "exponential", "jitter"),
    _signal("timeouts", "time-?outs?", r"timed\s+out"),
    _signal(
        "rate-limit handling",
        r"rate[- ]limit\w*",
        "429",
        "retry-after",
        r"throttl\w*",
    ),
    _signal(
        "model fallback",
        "fallback",
        r"fall\s+back",
        "failover",
        r"(?:another|secondary|backup)\s+model",
    ),
    _signal("circuit breaker", r"circuit[- ]breakers?"),
    _signal(
        "idempotency",
        r"idempoten\w*",
        r"exactly[- ]once",
        r"de-?duplicat\w*",
    ),
    _signal(
        "failed-job handling",
        r"dead[- ]letter",
        "dlq",
        r"failed\s+jobs?",
        r"marked\s+(?:as\s+)?failed",
        r"re-?runs?",
    ),
    _signal(
        "output validation and repair",
        r"validat\w+",
        r"repair\w*",
        "malformed",
        r"invalid\s+(?:json|output|answers?)",
    ),
    _signal(
        "error handling",
        r"error\s+handling",
        r"exceptions?",
        r"error\s+codes?",
        r"graceful\w*",
        r"handles?\s+errors",
    ),
    _signal(
        "durable jobs",
        r"worker\s+(?:crash\w*|restarts?)",
        r"redeliver\w*",
        r"at-least-once",
        r"survives?",
        r"no\s+lost\s+jobs",
        r"crash\w*",
    ),
)

_DOCUMENTATION_SIGNALS: Final = (
    _signal("README", "readme"),
    _signal(
        "setup instructions",
        "setup",
        r"set\s+up",
        "installation",
        "install",
        r"getting\s+started",
        r"how\s+to\s+run",
        r"docker\s+compose\s+up",
        r"make\s+run",
        r"pip\s+install",
        r"quick\s*start",
    ),
    _signal(
        "design explanation",
        "architecture",
        r"design\s+(?:decisions?|choices?)",
        "diagram",
        r"data\s+flow",
        r"how\s+it\s+works",
    ),
    _signal(
        "trade-offs",
        r"trade-?offs?",
        r"limitations?",
        r"would\s+improve",
        r"future\s+work",
        r"next\s+steps",
        r"with\s+more\s+time",
    ),
    _signal(
        "API documentation",
        "openapi",
        "swagger",
        r"api\s+docs?",
        "curl",
        r"example\s+(?:requests?|responses?)",
    ),
    _signal(
        "prompt documentation",
        r"prompt\s+design",
        r"system\s+prompt",
        r"prompts?\s+(?:are|is)\s+(?:versioned|documented)",
    ),
    _signal(
        "configuration",
        r"environment\s+variables?",
        r"\.env",
        r"configur\w+",
    ),
)

_CREATIVITY_SIGNALS: Final = (
    _signal(
        "dashboard or admin screens",
        "dashboard",
        r"admin\s+(?:ui|panel|screens?|site|interface)",
        r"django\s+admin",
        r"web\s+ui",
        "frontend",
    ),
    _signal(
        "metrics and observability",
        "metrics",
        "prometheus",
        "grafana",
        "opentelemetry",
        "tracing",
        r"structured\s+logging",
        "observability",
    ),
    _signal(
        "containerised deployment",
        "docker",
        r"docker[- ]compose",
        r"containeri[sz]\w*",
        "kubernetes",
        "helm",
    ),
    _signal(
        "continuous integration",
        "ci/cd",
        r"continuous\s+integration",
        "github actions",
        "gitlab ci",
        r"(?-i:CI)",
    ),
    _signal(
        "prompt evaluation",
        r"prompt\s+evaluation",
        r"evaluat\w+\s+(?:of\s+)?(?:the\s+)?prompts?",
        r"golden\s+(?:set|dataset)",
        r"consistency\s+(?:checks?|tests?)",
        r"benchmark\w*",
        r"a/b\s+test\w*",
    ),
    _signal(
        "authentication and rate limiting",
        r"authenticat\w+",
        r"api\s+(?:keys?|tokens?)",
        r"rate\s+limiting",
    ),
    _signal("caching", r"cach\w+"),
    _signal(
        "streaming or webhooks",
        "webhooks?",
        "server-sent events",
        "websockets?",
    ),
    _signal("load testing", r"load\s+test\w*", "locust", "k6", r"stress\s+test\w*"),
    _signal(
        "provider flexibility",
        r"offline\s+(?:mode|provider)",
        r"multiple\s+providers",
        r"provider-agnostic",
        "openrouter",
        "ollama",
    ),
)

# A report that covers almost nothing of the brief is about something else;
# its other qualities are then capped, as they are not this project's.
_OFF_BRIEF: Final = 0.15


def _brief_coverage(context: _Context) -> tuple[float, list[str], list[str]]:
    required = [s for s in _REQUIRED_PIECES if s.pattern.search(context.brief)]
    if not required:
        return 0.0, [], []
    found = [s.label for s in required if _mentions(s.pattern, context.project)]
    missing = [s.label for s in required if s.label not in found]
    return len(found) / len(required), found, missing


def _correctness(context: _Context, criterion: Criterion) -> _Assessment:
    pieces, found, missing = _brief_coverage(context)
    terms, terms_rationale = _generic_overlap(
        context.brief, context.project, "the brief"
    )
    if found or missing:
        value = 0.75 * pieces + 0.25 * terms
        rationale = (
            f"Covers {len(found)} of {len(found) + len(missing)} parts of the brief"
            + (f": {', '.join(found)}." if found else ".")
        )
        if missing:
            rationale += f" Missing: {', '.join(missing)}."
        rationale += f" Uses {terms:.0%} of the brief's key terms."
    else:
        value, rationale = terms, terms_rationale
    return _Assessment(_threshold(value, (0.2, 0.4, 0.6, 0.8)), rationale)


def _signal_assessment(
    context: _Context,
    signals: Sequence[_Signal],
    cuts: tuple[float, float, float, float],
    what: str,
) -> tuple[int, list[str], str]:
    found, missing = _signals_found(context.project, signals)
    score = _threshold(len(found), cuts)
    rationale = (
        f"Found {what}: {', '.join(found)}." if found else f"No {what} described."
    )
    if missing:
        rationale += f" Not described: {', '.join(missing)}."
    if score > 2 and _brief_coverage(context)[0] < _OFF_BRIEF:
        score = 2
        rationale += " The report does not describe the system the brief asks for."
    return score, found, rationale


def _code_quality(context: _Context, criterion: Criterion) -> _Assessment:
    score, found, rationale = _signal_assessment(
        context, _CODE_QUALITY_SIGNALS, (1, 2, 3, 5), "quality signals"
    )
    if "tests" not in found and score > 3:
        score = 3
        rationale += " Without tests the score is capped at 3."
    elif "test depth" not in found and score > 4:
        score = 4
    return _Assessment(score, rationale)


def _resilience(context: _Context, criterion: Criterion) -> _Assessment:
    score, _, rationale = _signal_assessment(
        context, _RESILIENCE_SIGNALS, (1, 2, 4, 7), "resilience measures"
    )
    return _Assessment(score, rationale)


def _documentation(context: _Context, criterion: Criterion) -> _Assessment:
    score, _, rationale = _signal_assessment(
        context, _DOCUMENTATION_SIGNALS, (1, 2, 4, 6), "documentation"
    )
    words = len(context.project.split())
    if words < 150 and score > 2:
        score = 2
        rationale += f" The report is very short ({words} words)."
    return _Assessment(score, rationale)


def _creativity(context: _Context, criterion: Criterion) -> _Assessment:
    score, _, rationale = _signal_assessment(
        context, _CREATIVITY_SIGNALS, (1, 2, 3, 5), "extras beyond the brief"
    )
    return _Assessment(score, rationale)


def _generic(group: str) -> Callable[[_Context, Criterion], _Assessment]:
    def assess(context: _Context, criterion: Criterion) -> _Assessment:
        document = context.cv if group == "cv" else context.project
        value, rationale = _generic_overlap(
            f"{criterion.name}\n{criterion.guide}", document, "this criterion"
        )
        return _Assessment(_threshold(value, (0.15, 0.3, 0.45, 0.6)), rationale)

    return assess


_Evaluator = Callable[[_Context, Criterion], _Assessment]

_EVALUATORS_BY_KEY: Final[dict[str, _Evaluator]] = {
    "technical_skills": _technical_skills,
    "experience_level": _experience_level,
    "relevant_achievements": _relevant_achievements,
    "cultural_fit": _cultural_fit,
    "correctness": _correctness,
    "code_quality": _code_quality,
    "resilience": _resilience,
    "documentation": _documentation,
    "creativity": _creativity,
}

# Custom rubrics name their criteria freely; these word stems find the closest
# known evaluator.
_EVALUATORS_BY_WORD: Final[tuple[tuple[tuple[str, ...], _Evaluator], ...]] = (
    (("skill", "technical", "stack"), _technical_skills),
    (("experience", "seniority", "years"), _experience_level),
    (("achievement", "impact", "accomplish", "result"), _relevant_achievements),
    (("cultur", "collaborat", "communicat", "teamwork", "soft"), _cultural_fit),
    (("correct", "requirement", "chain", "prompt", "functional"), _correctness),
    (("quality", "structure", "clean", "code"), _code_quality),
    (("resilien", "error", "reliab", "robust", "fault"), _resilience),
    (("document", "explanation", "readme"), _documentation),
    (("creativ", "bonus", "extra", "innovat"), _creativity),
)


def _evaluator_for(criterion: Criterion, group: str) -> _Evaluator:
    known = _EVALUATORS_BY_KEY.get(criterion.key)
    if known is not None:
        return known
    words = f"{criterion.key} {criterion.name}".lower()
    for stems, evaluator in _EVALUATORS_BY_WORD:
        if any(stem in words for stem in stems):
            return evaluator
    return _generic(group)


# --- The provider ------------------------------------------------------------


class OfflineProvider:
    """Scores CVs and projects from textual evidence; no network, no model.

    `today` anchors open-ended date ranges ("2021 - present"); pass it to make
    results independent of the day they are computed.
    """

    name = "offline"
    model = MODEL

    def __init__(self, *, today: datetime.date | None = None) -> None:
        self._today = today

    def run(self, chain_input: ChainInput) -> ChainResult:
        scoring.check_weights(c.weight for c in chain_input.cv_criteria)
        scoring.check_weights(c.weight for c in chain_input.project_criteria)
        cv = chain_input.cv_text[:MAX_ANALYSED_CHARS]
        job_description = chain_input.job_description[:MAX_ANALYSED_CHARS]
        required = _terms_in(job_description, TECH_TERMS) + _extra_required_terms(
            job_description
        )
        context = _Context(
            cv=cv,
            project=chain_input.project_text[:MAX_ANALYSED_CHARS],
            job_description=job_description,
            brief=chain_input.study_case_brief[:MAX_ANALYSED_CHARS],
            today=self._today or datetime.date.today(),
            required_terms=required,
            cv_terms=_terms_in(cv, TECH_TERMS),
            tech_match=_tech_match(cv, job_description)[0],
        )
        durations: dict[str, int] = {}

        started = time.monotonic()
        cv_scores = _score_all(context, chain_input.cv_criteria, "cv")
        cv_feedback = _feedback(cv_scores, "CV")
        durations["cv"] = _elapsed_ms(started)

        started = time.monotonic()
        project_scores = _score_all(context, chain_input.project_criteria, "project")
        project_feedback = _feedback(project_scores, "project report")
        durations["project"] = _elapsed_ms(started)

        started = time.monotonic()
        summary = _summary(chain_input.job_title, cv_scores, project_scores)
        durations["summary"] = _elapsed_ms(started)

        return ChainResult(
            cv_scores=cv_scores,
            project_scores=project_scores,
            cv_feedback=cv_feedback,
            project_feedback=project_feedback,
            overall_summary=summary,
            provider=self.name,
            model=MODEL,
            prompt_version=HEURISTICS_VERSION,
            step_durations_ms=durations,
        )


def _score_all(
    context: _Context, criteria: Sequence[Criterion], group: str
) -> tuple[CriterionScore, ...]:
    scores = []
    for criterion in criteria:
        assessment = _evaluator_for(criterion, group)(context, criterion)
        scores.append(
            CriterionScore(
                key=criterion.key,
                name=criterion.name,
                weight=criterion.weight,
                score=assessment.score,
                rationale=assessment.rationale,
            )
        )
    return tuple(scores)


def _feedback(scores: Sequence[CriterionScore], document: str) -> str:
    ordered = sorted(scores, key=lambda s: (-s.score, -scoring.as_weight(s.weight)))
    strongest = [s.name for s in ordered if s.score >= 4]
    weakest = [s.name for s in reversed(ordered) if s.score <= 2]
    parts = [f"{s.name} ({s.score}/5): {s.rationale}" for s in scores]
    if strongest:
        parts.append(f"Strongest areas: {', '.join(strongest)}.")
    if weakest:
        parts.append(
            f"To improve the {document}, add evidence for: {', '.join(weakest)}."
        )
    return " ".join(parts)


def _summary(
    job_title: str,
    cv_scores: Sequence[CriterionScore],
    project_scores: Sequence[CriterionScore],
) -> str:
    match_rate = scoring.cv_match_rate(cv_scores)
    project = scoring.project_score(project_scores)
    overall = (match_rate + project / 10) / 2
    if overall >= 0.75:
        recommendation = "Recommendation: move forward to a technical interview."
    elif overall >= 0.5:
        recommendation = (
            "Recommendation: a screening call could probe the gaps above before "
            "deciding."
        )
    else:
        recommendation = "Recommendation: not a match for this role on this evidence."
    return " ".join(
        [
            "Offline heuristic evaluation: scored from evidence found in the "
            "documents, without a language model.",
            f"For {job_title or 'this role'}, the CV match rate is {match_rate:.2f}"
            f" ({_extremes(cv_scores)}), and the project scores {project:.1f}/10"
            f" ({_extremes(project_scores)}).",
            recommendation,
        ]
    )


def _extremes(scores: Sequence[CriterionScore]) -> str:
    best = max(scores, key=lambda s: s.score)
    worst = min(scores, key=lambda s: s.score)
    if best.score == worst.score:
        return f"{best.score}/5 on every criterion"
    return (
        f"strongest: {best.name} {best.score}/5; weakest: {worst.name} {worst.score}/5"
    )


def _elapsed_ms(started: float) -> int:
    return max(0, round((time.monotonic() - started) * 1000))
