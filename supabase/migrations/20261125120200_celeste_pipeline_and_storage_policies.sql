-- CelesteOS Desktop, 3 of 3: let a yacht key register its own documents with the CelesteOS
-- pipeline (doc_metadata, search_index) and upload them to Storage bucket `documents` under
-- its own `{yacht_id}/` prefix. Nothing more.
--
-- doc_metadata and search_index belong to the pipeline team and must exist before this runs.
-- This migration only ADDS to them: a `source_id` column and its unique index on doc_metadata
-- (the app's upsert target), grants to `authenticated`, and policies named celeste_yacht_*.
-- It turns row-level security ON for them if it was off: from then on, only rows a policy
-- allows are visible to anon/authenticated clients. The pipeline itself uses service_role,
-- which bypasses RLS and is unaffected; any other client reading these tables with the anon
-- key or a user session needs its own policy first (see supabase/README.md).
--
-- Storage: row-level security on storage.objects is already on in every Supabase project, and
-- the migration role cannot ALTER that table any more (it can create policies on it), so this
-- file only adds policies there. Idempotent: safe to run again.

do $$
begin
    if to_regclass('public.doc_metadata') is null or to_regclass('public.search_index') is null then
        raise exception using
            message = 'public.doc_metadata and public.search_index must exist before this migration',
            hint = 'They belong to the CelesteOS pipeline schema: install it first.';
    end if;
end
$$;

-- doc_metadata: the app's stable identity for a document -----------------------------------------
-- A rename or move in OneDrive changes storage_path, filename and system_path, so none of them
-- can be the upsert key. source_id is the same value the app writes to search_index.object_id:
-- a lowercase uuid5 string of (yacht_id, drive id, item id). NULL for rows from other sources,
-- and NULLs never collide in a unique index, so existing NAS rows are untouched.
alter table public.doc_metadata add column if not exists source_id text;
-- Used by the app; FACTS.md lists them as pipeline columns. No-ops where they already exist.
alter table public.doc_metadata add column if not exists storage_bucket text;
alter table public.doc_metadata add column if not exists deleted_at timestamptz;
comment on column public.doc_metadata.source_id is
    'Stable identity within (yacht_id, source); for OneDrive the lowercase uuid5 of yacht, drive '
    'and item id, equal to search_index.object_id. Upsert key with yacht_id and source.';
-- Not partial: PostgREST's on_conflict=yacht_id,source,source_id can only infer a plain index.
create unique index if not exists doc_metadata_yacht_source_source_id_key
    on public.doc_metadata (yacht_id, source, source_id);

-- Turn RLS on where it was off, and say so loudly: it changes what other clients see.
do $$
declare
    tbl text;
begin
    foreach tbl in array array['doc_metadata', 'search_index'] loop
        if not (select relrowsecurity from pg_class where oid = format('public.%I', tbl)::regclass) then
            raise warning 'row-level security is now ON for public.%: clients other than '
                'service_role see only rows a policy allows', tbl;
            execute format('alter table public.%I enable row level security', tbl);
        end if;
    end loop;
end
$$;

grant select, insert, update on public.doc_metadata, public.search_index to authenticated;

-- A yacht may only register objects under its own prefix: the pipeline (service_role) later
-- fetches storage_path to extract text, so a row naming another yacht's file would leak that
-- file into this yacht's search results. Same for the path carried in search_index.payload.
drop policy if exists celeste_yacht_select on public.doc_metadata;
drop policy if exists celeste_yacht_insert on public.doc_metadata;
drop policy if exists celeste_yacht_update on public.doc_metadata;
create policy celeste_yacht_select on public.doc_metadata for select to authenticated
    using (yacht_id = (select celeste_fleet.current_yacht_id()));
create policy celeste_yacht_insert on public.doc_metadata for insert to authenticated
    with check (
        yacht_id = (select celeste_fleet.current_yacht_id())
        and split_part(storage_path, '/', 1) = yacht_id::text
    );
create policy celeste_yacht_update on public.doc_metadata for update to authenticated
    using (yacht_id = (select celeste_fleet.current_yacht_id()))
    with check (
        yacht_id = (select celeste_fleet.current_yacht_id())
        and split_part(storage_path, '/', 1) = yacht_id::text
    );

-- search_index is unique on (object_type, object_id) across the whole fleet: an upsert that
-- meets another yacht's row fails with 42501 instead of overwriting it. org_id must equal the
-- yacht too, so a key cannot file rows under another organisation's search scope.
drop policy if exists celeste_yacht_select on public.search_index;
drop policy if exists celeste_yacht_insert on public.search_index;
drop policy if exists celeste_yacht_update on public.search_index;
create policy celeste_yacht_select on public.search_index for select to authenticated
    using (yacht_id = (select celeste_fleet.current_yacht_id()));
create policy celeste_yacht_insert on public.search_index for insert to authenticated
    with check (
        yacht_id = (select celeste_fleet.current_yacht_id())
        and org_id::text = yacht_id::text
        and split_part(coalesce(payload ->> 'storage_path', yacht_id::text || '/'), '/', 1)
            = yacht_id::text
    );
create policy celeste_yacht_update on public.search_index for update to authenticated
    using (yacht_id = (select celeste_fleet.current_yacht_id()))
    with check (
        yacht_id = (select celeste_fleet.current_yacht_id())
        and org_id::text = yacht_id::text
        and split_part(coalesce(payload ->> 'storage_path', yacht_id::text || '/'), '/', 1)
            = yacht_id::text
    );

-- Storage: bucket `documents`, first folder = the key's yacht id (lowercase canonical form).
-- Upload with x-upsert needs INSERT, UPDATE and SELECT; the app never deletes objects.
drop policy if exists celeste_yacht_documents_select on storage.objects;
drop policy if exists celeste_yacht_documents_insert on storage.objects;
drop policy if exists celeste_yacht_documents_update on storage.objects;
create policy celeste_yacht_documents_select on storage.objects for select to authenticated
    using (
        bucket_id = 'documents'
        and (storage.foldername(name))[1] = (select celeste_fleet.current_yacht_id())::text
    );
create policy celeste_yacht_documents_insert on storage.objects for insert to authenticated
    with check (
        bucket_id = 'documents'
        and (storage.foldername(name))[1] = (select celeste_fleet.current_yacht_id())::text
    );
create policy celeste_yacht_documents_update on storage.objects for update to authenticated
    using (
        bucket_id = 'documents'
        and (storage.foldername(name))[1] = (select celeste_fleet.current_yacht_id())::text
    )
    with check (
        bucket_id = 'documents'
        and (storage.foldername(name))[1] = (select celeste_fleet.current_yacht_id())::text
    );

-- Lets the app check at start-up that the bucket exists (GET /storage/v1/bucket/documents).
drop policy if exists celeste_yacht_documents_bucket_select on storage.buckets;
create policy celeste_yacht_documents_bucket_select on storage.buckets for select to authenticated
    using (id = 'documents' and (select celeste_fleet.current_yacht_id()) is not null);
