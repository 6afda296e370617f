"""Stage 3, serving: the embeddings file format, the Milvus and SQL stores, recommend(), the HTTP API
with its web page, and the notebook picker. Needs no torch: it reads exported vectors only."""
