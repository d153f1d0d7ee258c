"""Tests of the SQL we ship for the fleet's Supabase project, on a real PostgreSQL."""
