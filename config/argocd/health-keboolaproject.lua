-- Argo CD health check of a keboola.dev KeboolaProject. Argo CD sets the
-- global obj to the live object and reads status and message from the table
-- that the script returns. It runs scripts from argocd-cm with only the base,
-- table and package libraries, so the script uses no string functions.

local function findCondition(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == conditionType then
      return condition
    end
  end
  return nil
end

local function isTrue(condition)
  return condition ~= nil and condition.status == "True"
end

-- describe returns the condition's message, or its reason when the message
-- is empty.
local function describe(condition)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return condition.reason or ""
end

local generation = tonumber(obj.metadata.generation) or 0

if obj.status == nil or obj.status.observedGeneration == nil then
  return { status = "Progressing", message = "Waiting for the operator to report status" }
end
if tonumber(obj.status.observedGeneration) < generation then
  return { status = "Progressing", message = "Waiting for the operator to observe generation " .. generation }
end

local stalled = findCondition("Stalled")
if isTrue(stalled) then
  return { status = "Degraded", message = describe(stalled) }
end

-- An object being deleted stays until the operator removes its finalizer,
-- which it does once its cleanup is done.
if obj.metadata.deletionTimestamp ~= nil then
  local ready = findCondition("Ready")
  if ready ~= nil and ready.status ~= "True" then
    return { status = "Progressing", message = describe(ready) }
  end
  return { status = "Progressing", message = "Waiting for the operator to finish the deletion" }
end

local reconciling = findCondition("Reconciling")
if isTrue(reconciling) then
  return { status = "Progressing", message = describe(reconciling) }
end

local ready = findCondition("Ready")
if ready == nil then
  return { status = "Progressing", message = "Waiting for the Ready condition" }
end
if ready.observedGeneration ~= nil and tonumber(ready.observedGeneration) < generation then
  return { status = "Progressing", message = "Waiting for the operator to observe generation " .. generation }
end
if ready.status == "True" then
  return { status = "Healthy", message = describe(ready) }
end
return { status = "Progressing", message = describe(ready) }
