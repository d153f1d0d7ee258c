"""Simulated Microsoft 365 (Entra ID sign-in, Graph) and Supabase (Storage, TUS, PostgREST).

Real HTTP servers on 127.0.0.1 with fault injection, for tests, benchmarks and demo mode.
"""
