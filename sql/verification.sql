-- bubble-sync: the original plan's verification queries (PGCRON_SETUP_SUMMARY.md), unchanged, with the
-- expected results; `python -m components render-sql` ends every setup script with them.

-- Cron jobs scheduled and active. Expected (the maintenance job is bubble_sync.purge, so this lists two):
--   bubble-sync-processor | * * * * *   | t
--   bubble-sync-retry     | */5 * * * * | t
SELECT jobid, jobname, schedule, active
FROM cron.job
WHERE jobname LIKE 'bubble-sync%';

-- Vault secrets exist. Expected: both listed.
SELECT name FROM vault.secrets
WHERE name IN ('supabase_url', 'service_role_key');

-- sync_queue status.
SELECT status, COUNT(*) FROM sync_queue GROUP BY status;

-- Functions exist. Expected: both listed.
SELECT proname FROM pg_proc
WHERE proname IN ('invoke_bubble_sync_processor', 'invoke_bubble_sync_retry');

-- Daily health check. Expected: active_jobs = 2. More detail: select * from bubble_sync.health();
SELECT
    (SELECT COUNT(*) FROM cron.job WHERE jobname LIKE 'bubble-sync%' AND active) as active_jobs,
    (SELECT COUNT(*) FROM sync_queue WHERE status = 'pending') as pending_items,
    (SELECT COUNT(*) FROM sync_queue WHERE status = 'failed') as failed_items,
    (SELECT COUNT(*) FROM sync_queue WHERE status = 'completed' AND created_at >= NOW() - INTERVAL '24 hours')
        as completed_today;
