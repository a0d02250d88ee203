"""`embedrt serve`: HTTP over the request queue (OpenAI /v1/embeddings, TEI /embed, /metrics). Nothing here batches."""
