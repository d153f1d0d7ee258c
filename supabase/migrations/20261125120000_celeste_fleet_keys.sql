-- CelesteOS Desktop, 1 of 3: who is asking. A yacht-scoped key is a JWT signed with the
-- project's JWT secret, with role `authenticated` and a `yacht_id` claim (see
-- docs/fleet-keys.md). Every policy we ship asks one function, celeste_fleet.current_yacht_id(),
-- which yacht the request speaks for; it answers NULL (so every policy refuses) when the
-- claim is missing or malformed, or when the fleet administrator has revoked the key.
--
-- The schema `celeste_fleet` is not exposed through PostgREST (only `public` is, by default),
-- so neither the revocation list nor the security-definer function can be reached over the API.
-- Idempotent: safe to run again.

create schema if not exists celeste_fleet;
comment on schema celeste_fleet is
    'CelesteOS Desktop: fleet-key helpers and the key revocation list. Not exposed over the API.';

-- Revocation list. A row revokes one key (by its `jti` claim) or every key of a yacht issued
-- before an instant (by the `iat` claim): the second form revokes keys minted without a jti,
-- and "rotate this yacht's key" is one row after the new key is delivered.
create table if not exists celeste_fleet.key_revocations (
    id bigint generated always as identity primary key,
    yacht_id uuid not null,
    jti text,
    issued_before timestamptz,
    reason text,
    revoked_at timestamptz not null default now(),
    revoked_by text not null default current_user,
    constraint key_revocations_what check (jti is not null or issued_before is not null)
);
create index if not exists key_revocations_yacht_idx on celeste_fleet.key_revocations (yacht_id);
comment on table celeste_fleet.key_revocations is
    'Fleet keys refused by RLS although their signature is valid: by jti, or every key of the '
    'yacht whose iat is before issued_before. Edit with the dashboard or service role only.';

-- Only administrators (postgres, service_role) touch the list; RLS with no policy plus no
-- grants keeps the API roles out even if someone exposes the schema later.
alter table celeste_fleet.key_revocations enable row level security;
revoke all on celeste_fleet.key_revocations from public, anon, authenticated;
grant all on celeste_fleet.key_revocations to service_role;

-- The yacht the current request speaks for, or NULL. SECURITY DEFINER so it can read the
-- revocation list that the caller cannot; search_path is empty so nothing can be shadowed.
-- Policies call it as `(select celeste_fleet.current_yacht_id())`, which PostgreSQL evaluates
-- once per statement (an InitPlan), so the revocation lookup costs one index probe per request,
-- not one per row.
create or replace function celeste_fleet.current_yacht_id() returns uuid
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    claims jsonb := auth.jwt();
    claimed text := claims ->> 'yacht_id';
    yacht uuid;
    issued_at timestamptz;
begin
    if claims is null or claimed is null
       or claimed !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
        return null;
    end if;
    yacht := claimed::uuid;
    if jsonb_typeof(claims -> 'iat') = 'number' then
        issued_at := to_timestamp((claims ->> 'iat')::double precision);
    end if;
    if exists (
        select 1
        from celeste_fleet.key_revocations r
        where r.yacht_id = yacht
          and (
              r.jti = claims ->> 'jti'
              -- a key without iat cannot prove it is newer than the cut-off: refuse it
              or (r.issued_before is not null and (issued_at is null or issued_at < r.issued_before))
          )
    ) then
        return null;
    end if;
    return yacht;
end
$$;
comment on function celeste_fleet.current_yacht_id() is
    'The yacht_id claim of the request''s JWT as a uuid, or NULL if absent, malformed or revoked.';

revoke all on function celeste_fleet.current_yacht_id() from public;
grant usage on schema celeste_fleet to authenticated, service_role;
grant execute on function celeste_fleet.current_yacht_id() to authenticated, service_role;

-- Keeps updated_at honest whatever the client sends.
create or replace function celeste_fleet.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at := now();
    return new;
end
$$;
revoke all on function celeste_fleet.touch_updated_at() from public;
