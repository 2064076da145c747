-- HTTP headers as the server's responses and the client's requests keep
-- them: a flat list {name, value, ...} in the case the app wrote (a message
-- has few, and a flat list goes to C as it is). A value is a string or a
-- list of strings, one header line each. Names compare in any case.
local lower = string.lower

local M = {}

-- The value as it is kept; numbers become strings. Raises at level as the
-- caller counts (2: the caller's caller).
function M.check(name, value, level)
  if type(name) ~= "string" then error("header name must be a string", level + 1) end
  if type(value) == "number" then return tostring(value) end
  if type(value) == "table" then
    local copy = {}
    for i = 1, #value do copy[i] = tostring(value[i]) end
    return copy
  end
  if type(value) ~= "string" then
    error("header value must be a string, a number or a list", level + 1)
  end
  return value
end

-- Sets name to value (already checked), replacing a header of that name.
function M.set(list, name, value)
  local lname = lower(name)
  for i = 1, #list, 2 do
    if lower(list[i]) == lname then
      list[i + 1] = value
      return
    end
  end
  list[#list + 1] = name
  list[#list + 1] = value
end

function M.get(list, name)
  local lname = lower(name)
  for i = 1, #list, 2 do
    if lower(list[i]) == lname then return list[i + 1] end
  end
end

function M.remove(list, name)
  local lname = lower(name)
  for i = #list - 1, 1, -2 do
    if lower(list[i]) == lname then
      table.remove(list, i)
      table.remove(list, i)
    end
  end
end

return M
