"""The output names of a text export: what the embedder, the long-text planner and the queue ask an engine for."""

SENTENCE_OUTPUT = "sentence_embedding"  # (batch, dim): pooled in the graph
TOKEN_OUTPUT = "token_embeddings"  # (batch, tokens, dim): pooled by the runtime when the graph does not
