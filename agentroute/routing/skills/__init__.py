"""Skills slot: retrieve-and-rerank over large skill pools (SkillRouter).

Stage 1 fuses BM25 and dense retrieval over name, description and body; stage 2 reranks with
a learned offline model, an LLM, or a cross-encoder, and may return no skill at all.
"""

from agentroute.routing.skills._index import IndexReport, Retrieved, SkillIndex, SkillLike
from agentroute.routing.skills._metrics import (
    EvalQuery,
    SkillRecord,
    metric_table,
    query_metrics,
    read_queries,
    read_skills,
)
from agentroute.routing.skills._rerank import (
    FEATURES,
    CrossEncoderReranker,
    FeatureReranker,
    LLMReranker,
    Reranker,
    RerankRequest,
    candidate_features,
    parse_ranking,
)
from agentroute.routing.skills._static import (
    StaticEmbedder,
    distill_static_model,
    static_model_dir,
)
from agentroute.routing.skills._strategy import Ranked, RetrieveRerank, make_embedder, make_reranker
from agentroute.routing.skills._text import QueryTokens, SkillText, TextCaps, tokenize
from agentroute.routing.skills._train import fit_feature_reranker, save_weights, training_lists

__all__ = [
    "FEATURES",
    "CrossEncoderReranker",
    "EvalQuery",
    "FeatureReranker",
    "IndexReport",
    "LLMReranker",
    "QueryTokens",
    "Ranked",
    "RerankRequest",
    "Reranker",
    "RetrieveRerank",
    "Retrieved",
    "SkillIndex",
    "SkillLike",
    "SkillRecord",
    "SkillText",
    "StaticEmbedder",
    "TextCaps",
    "candidate_features",
    "distill_static_model",
    "fit_feature_reranker",
    "make_embedder",
    "make_reranker",
    "metric_table",
    "parse_ranking",
    "query_metrics",
    "read_queries",
    "read_skills",
    "save_weights",
    "static_model_dir",
    "tokenize",
    "training_lists",
]
