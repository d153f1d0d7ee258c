"""Supabase destination: storage keys, uploads (standard and TUS), pipeline registration, digest
mode, shore-side status through the outbox, and the destination check."""
