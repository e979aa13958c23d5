"""Wing: what users do with the models — pipelines, retrieval, metrics, batch inference, benchmark harnesses."""
