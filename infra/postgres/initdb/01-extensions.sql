-- Runs once, when the postgres-data volume is first initialised (docker-entrypoint-initdb.d).
-- pgvector ships in the pgvector/pgvector image; enabling it here lets optional embedding
-- migrations use it without superuser rights. The schema itself comes from the migrate service.
CREATE EXTENSION IF NOT EXISTS vector;
