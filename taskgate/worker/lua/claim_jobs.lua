-- claim_jobs.lua: claim popped arq jobs and read what starting each one needs, in one round trip.
-- A job is claimed as arq claims it (its in-progress key, set only when absent, and only while
-- the job is queued and due); a claimed job's start is then arq's run_job read: the job data and
-- its retry counter incremented (INCR, EXPIRE), plus the attempt's task hash, so the worker starts
-- it without another read. Nothing is written for a job that is not claimed.
-- KEYS[1] arq_queue        arq's queue zset (job id -> when due, ms)
-- ARGV[1] base             Keys.base (task keys built by keys.lua's K.task, as Keys.task)
-- ARGV[2] now              clock override in ms ("" = Redis TIME)
-- ARGV[3] job_prefix       arq's job key prefix ("arq:job:")
-- ARGV[4] progress_prefix  arq's in-progress key prefix ("arq:in-progress:")
-- ARGV[5] retry_prefix     arq's retry counter prefix ("arq:retry:")
-- ARGV[6] in_progress_ms   how long a claim lasts (arq's in_progress_timeout_s)
-- ARGV[7] retry_ttl_s      lifetime of the retry counter (arq's: 88400 s)
-- ARGV[8..] jobs           job_id, task_id, ... (pairs; task_id "" when the job is not an attempt's)
-- Returns: {0, job_id_1, score_1, data_1, job_try_1, task_1, ...} for the claimed jobs only: data
--          is false (nil) when the job key has expired, task the task hash as a flat list (empty
--          when the task is gone or no task id was given)
-- Errors: none (a job running elsewhere, finished or not yet due is left alone)

--- @include "store/lua/lib/common.lua"
--- @include "store/lua/lib/keys.lua"

local arq_queue = KEYS[1]
local base, job_prefix, progress_prefix, retry_prefix = ARGV[1], ARGV[3], ARGV[4], ARGV[5]
local in_progress_ms, retry_ttl_s = tonumber(ARGV[6]), tonumber(ARGV[7])
local now = clock_ms(ARGV[2])

local out = {0}
for i = 8, #ARGV - 1, 2 do
  local job_id, task_id = ARGV[i], ARGV[i + 1]
  local score = tonumber(redis.call('ZSCORE', arq_queue, job_id))
  if score and score <= now
    and redis.call('SET', progress_prefix .. job_id, '1', 'PX', in_progress_ms, 'NX') then
    local retry_key = retry_prefix .. job_id
    local job_try = redis.call('INCR', retry_key)
    redis.call('EXPIRE', retry_key, retry_ttl_s)
    local task = {}
    if task_id ~= '' then task = redis.call('HGETALL', K.task(base, task_id)) end
    local data = redis.call('GET', job_prefix .. job_id)  -- false when expired: nil in the reply
    local n = #out
    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = job_id, score, data, job_try, task
  end
end
return out
