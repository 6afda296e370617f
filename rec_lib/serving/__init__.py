"""Stage 5, serving: the Milvus and SQL stores, recommend(), and the HTTP API with its web page. Needs no torch:
it reads exported vectors only."""
