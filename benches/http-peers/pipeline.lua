-- wrk script: sends DEPTH requests (default 16) in one write on each
-- connection, as TechEmpower's plaintext test does; wrk counts every
-- response. Usage: wrk ... -s pipeline.lua URL -- 16
init = function(args)
  local depth = tonumber(args[1]) or 16
  local batch = {}
  for i = 1, depth do
    batch[i] = wrk.format(nil)
  end
  req = table.concat(batch)
end

request = function()
  return req
end
