-- Argo CD health of the modelplane.io kinds (Experiment, Run, ModelVersion, ModelStage).
--
-- One script serves every kind: kustomization.yaml in this directory installs it as
-- resource.customizations.health.modelplane.io_<Kind> in argocd-cm. It reads only the kstatus
-- fields (status.observedGeneration and the Ready, Reconciling and Stalled conditions); unlike
-- kstatus it also reads Ready, and Stalled wins over Reconciling (manifests/gitops/flux/README.md
-- compares the two):
--   Progressing  no status yet, a generation the operator has not observed, Reconciling=True,
--                or Ready=False for a reason that resolves by itself (verifying, rolling out)
--   Degraded     Stalled=True, or Ready=False for a reason a person must fix
--   Suspended    a ModelStage waiting for an approval or for its required earlier stage
--   Healthy      Ready=True for the current generation
-- Written for Lua 5.1 (gopher-lua, Argo CD's interpreter); tests run it with lua5.1 and lua5.4.

local hs = {}

-- Reasons of Ready=False that need a person: the object will not get better on its own.
local terminal = {
  Experiment = {InvalidSpec = true},
  Run = {InvalidSpec = true, ExperimentNotFound = true, ParentNotFound = true,
         VersionNotFound = true},
  ModelVersion = {InvalidSpec = true, RunNotFound = true, ArtifactNotFound = true,
                  DigestMismatch = true},
  ModelStage = {InvalidSpec = true, VersionNotFound = true, GateFailed = true,
                ProgressDeadlineExceeded = true, RolledBack = true},
}
-- Reasons of Ready=False that wait for a person without anything being wrong.
local waiting = {
  ModelStage = {AwaitingApproval = true, RequiredStageNotMet = true},
}

local function find(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c)
  local text = c.reason or c.type
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

local function check()
  local status = obj.status
  local generation = obj.metadata and obj.metadata.generation
  if status == nil then
    return "Progressing", "Waiting for the operator to report status"
  end
  local observed = status.observedGeneration
  if generation ~= nil and (observed == nil or observed < generation) then
    return "Progressing", string.format("Waiting for the operator to observe generation %d",
                                        generation)
  end
  local conditions = status.conditions
  local stalled = find(conditions, "Stalled")
  if stalled ~= nil and stalled.status == "True" then
    return "Degraded", describe(stalled)
  end
  local ready = find(conditions, "Ready")
  if ready == nil then
    return "Progressing", "Waiting for the Ready condition"
  end
  if generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
    return "Progressing", string.format("Waiting for Ready of generation %d", generation)
  end
  local reconciling = find(conditions, "Reconciling")
  if reconciling ~= nil and reconciling.status == "True" then
    return "Progressing", describe(reconciling)
  end
  if ready.status == "True" then
    return "Healthy", describe(ready)
  end
  local reasons = obj.kind and terminal[obj.kind] or {}
  if ready.status == "False" and ready.reason ~= nil and reasons[ready.reason] then
    return "Degraded", describe(ready)
  end
  local pauses = obj.kind and waiting[obj.kind] or {}
  if ready.status == "False" and ready.reason ~= nil and pauses[ready.reason] then
    return "Suspended", describe(ready)
  end
  return "Progressing", describe(ready)
end

hs.status, hs.message = check()
return hs
