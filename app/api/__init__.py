"""The GraphQL API: a thin layer over the domain services (no storage logic here)."""
