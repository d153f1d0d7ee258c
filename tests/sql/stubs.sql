-- Stand-ins for what a hosted Supabase project (and the CelesteOS pipeline) already has before
-- our migrations run: the API roles, the `auth` helpers that read PostgREST's per-request JWT
-- claims, the `storage` schema as Supabase Storage creates it, and the pipeline's two tables.
--
-- Only the parts our migrations and RLS tests touch are reproduced, with the same names, types,
-- grants and defaults as the real thing, so a policy that works here works there:
--   * roles anon / authenticated / service_role (BYPASSRLS) / authenticator, as Supabase makes them;
--   * Supabase's default privileges: every new table in `public` is granted to anon and
--     authenticated, so RLS (and our explicit revokes) is the only gate;
--   * auth.jwt(), auth.uid(), auth.role() read `request.jwt.claims`, which PostgREST and the
--     Storage server set with set_config(..., true) for each request;
--   * storage.buckets / storage.objects with RLS enabled and storage.foldername() as Storage's
--     migrations define it; the tables are owned by supabase_storage_admin, as on the platform.
--
-- Not reproduced: pg_net/pgvector/pgsodium, Storage's prefix tables and triggers, supautils (the
-- platform's guard that lets `postgres` create policies on storage.objects without owning it).

-- Roles -----------------------------------------------------------------------------------------
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'authenticator') then
        create role authenticator login noinherit;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'supabase_storage_admin') then
        create role supabase_storage_admin nologin noinherit createrole;
    end if;
end
$$;

grant anon, authenticated, service_role to authenticator;

grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;

-- auth ------------------------------------------------------------------------------------------
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;

grant execute on function auth.jwt(), auth.uid(), auth.role() to anon, authenticated, service_role;

-- storage ---------------------------------------------------------------------------------------
create schema if not exists storage authorization supabase_storage_admin;
grant usage on schema storage to anon, authenticated, service_role;

create table if not exists storage.buckets (
    id text primary key,
    name text not null,
    owner uuid,
    owner_id text,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    public boolean default false,
    avif_autodetection boolean default false,
    file_size_limit bigint,
    allowed_mime_types text[]
);
create unique index if not exists bname on storage.buckets using btree (name);

create table if not exists storage.objects (
    id uuid primary key default gen_random_uuid(),
    bucket_id text references storage.buckets (id),
    name text,
    owner uuid,
    owner_id text,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    last_accessed_at timestamptz default now(),
    metadata jsonb,
    path_tokens text[] generated always as (string_to_array(name, '/')) stored,
    version text,
    user_metadata jsonb
);
create unique index if not exists bucketid_objname on storage.objects using btree (bucket_id, name);

alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;

create or replace function storage.foldername(name text) returns text[]
language plpgsql
as $$
declare
    _parts text[];
begin
    select string_to_array(name, '/') into _parts;
    return _parts[1:array_length(_parts, 1) - 1];
end
$$;

alter table storage.buckets owner to supabase_storage_admin;
alter table storage.objects owner to supabase_storage_admin;
alter function storage.foldername(text) owner to supabase_storage_admin;

grant all on storage.buckets, storage.objects to anon, authenticated, service_role;
grant execute on function storage.foldername(text) to anon, authenticated, service_role;

insert into storage.buckets (id, name) values ('documents', 'documents'), ('other', 'other')
on conflict (id) do nothing;

-- The CelesteOS pipeline's tables (owned by the pipeline team; shaped as FACTS.md lists them) ----
-- Created with RLS off, so the tests see our migration switch it on and say so.
create table if not exists public.doc_metadata (
    id uuid primary key default gen_random_uuid(),
    yacht_id uuid not null,
    source text not null,
    filename text not null,
    storage_path text not null,
    storage_bucket text,
    original_path text,
    content_type text,
    size_bytes bigint,
    sha256 text,
    system_path text,
    doc_type text,
    system_type text,
    metadata jsonb,
    deleted_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table if not exists public.search_index (
    id uuid primary key default gen_random_uuid(),
    object_type text not null,
    object_id uuid not null,
    org_id uuid,
    yacht_id uuid,
    search_text text,
    payload jsonb,
    embedding_status text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (object_type, object_id)
);
