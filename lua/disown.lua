-- disown: gives one partition's owner lease up, if the worker still holds it, so another takes it at once.
-- Run twice, the second run finds the lease gone (or another's, left alone): the same state, the lease not ours.
-- KEYS[1] owner      STRING  the owning worker's id
-- ARGV[1] worker     the worker giving it up
-- Returns: {released} 1 when the lease was the worker's and is now free; 0 when it was not held by it
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {1}
end
return {0}
