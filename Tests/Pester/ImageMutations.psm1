# Seeded mutations of real checkpoint images, for Fuzz.Tests.ps1. Each case draws from a random stream of its own
# (the run's seed and the case number), so that one case can be drawn again alone on an image of the same program;
# it changes a working copy of the image and says in words what it changed. Reset-WorkingImage brings the copy back
# to the original by copying back only what a case touched (the pages of a 24 MiB image are not copied 2,000 times).

# Byte-level damage, which the digests of criups-digests.img find, and value-level edits made through
# Import-CheckpointImageFile / Export-CheckpointImageFile, which record the file's digest again (a deliberate edit) or
# are made to an image without digests (as CRIU's come): what the restore's own checks of values must find.
$script:ByteKinds = @('ByteFlip', 'Truncate', 'AppendJunk', 'ZeroRange', 'SwapFiles')
$script:ValueKinds = @('ValueEdit', 'RepeatEntry', 'RemoveEntry')
$script:Manifest = 'criups-digests.img'

function Get-MutationKinds { $script:ByteKinds + $script:ValueKinds }

function Test-ByteKind([string]$Kind) { $Kind -in $script:ByteKinds }

# One stream per case: the same seed and case number draw the same mutation.
function New-CaseRandom([int]$Seed, [int]$Case) { [System.Random]::new([int](([long]$Seed * 7919 + $Case) % [int]::MaxValue)) }

# The image files of a directory, by name (what a checkpoint wrote; logs are no image files).
function Get-ImageFileNames([string]$Directory) {
    @(Get-ChildItem -LiteralPath $Directory -File | Where-Object Name -NotIn 'dump.log', 'restore.log' | Sort-Object Name | ForEach-Object Name)
}

# A working copy of an image, with the original kept beside it to put back what a case changes, the files each kind of
# mutation may change, and the JSON text of the original's files once read.
function New-WorkingImage([string]$Original, [string]$Copy) {
    Copy-Item -LiteralPath $Original $Copy -Recurse
    $files = Get-ImageFileNames $Original
    [pscustomobject]@{
        Original = $Original
        Path = $Copy
        Files = $files
        # Byte-level damage may hit every image file the digests cover, the pages too (a 24 MiB file is changed where it
        # lies): not the manifest, nor stats-dump, which the checkpoint writes after its commit and no restore reads.
        ByteTargets = @($files | Where-Object { $_ -ne $script:Manifest -and $_ -notlike 'stats-*' })
        # Values can be edited in all but the raw pages.
        ValueTargets = @($files | Where-Object { $_ -notmatch '^pages-' })
        Json = @{}
    }
}

# Puts back every file a case changed or removed (and the digests, which a case may remove), and deletes what a restore
# adds (restore.log).
function Reset-WorkingImage($Working, [string[]]$Touched) {
    foreach ($name in @($Touched) + $script:Manifest | Select-Object -Unique) {
        [IO.File]::Copy((Join-Path $Working.Original $name), (Join-Path $Working.Path $name), $true)
    }
    [IO.File]::Delete((Join-Path $Working.Path 'restore.log'))
}

function Get-RandomItem([System.Random]$Random, [object[]]$Items) { $Items[$Random.Next($Items.Count)] }

function Get-Shuffled([System.Random]$Random, [object[]]$Items) {
    $copy = [object[]]$Items.Clone()
    $Random.Shuffle($copy)
    $copy
}

function Get-RandomUInt64([System.Random]$Random) {
    $bytes = [byte[]]::new(8)
    $Random.NextBytes($bytes)
    [BitConverter]::ToUInt64($bytes, 0)
}

# Applies a byte-level mutation of KIND to the working copy; returns what it did.
function Invoke-ByteMutation([System.Random]$Random, $Working, [string]$Kind) {
    $targets = $Working.ByteTargets
    $name = Get-RandomItem $Random $targets
    $path = Join-Path $Working.Path $name
    $length = [IO.FileInfo]::new($path).Length
    switch ($Kind) {
        'ByteFlip' {
            $count = 1 + $Random.Next(4)
            $flips = @(for ($i = 0; $i -lt $count; $i++) { [pscustomobject]@{ Offset = [long]($Random.NextInt64([Math]::Max(1, $length))); Mask = [byte](1 + $Random.Next(255)) } })
            $stream = [IO.File]::Open($path, 'Open', 'ReadWrite')
            try {
                foreach ($flip in $flips) {
                    $stream.Position = $flip.Offset
                    $old = $stream.ReadByte()
                    $stream.Position = $flip.Offset
                    $stream.WriteByte([byte]($old -bxor $flip.Mask))
                }
            }
            finally { $stream.Dispose() }
            $what = ($flips | ForEach-Object { 'byte {0} ^= 0x{1:x2}' -f $_.Offset, $_.Mask }) -join ', '
            return [pscustomobject]@{ Kind = $Kind; Touched = @($name); Description = "$name ($length bytes): $what" }
        }
        'Truncate' {
            $to = [long]($Random.NextInt64([Math]::Max(1, $length)))
            $stream = [IO.File]::Open($path, 'Open', 'ReadWrite')
            try { $stream.SetLength($to) } finally { $stream.Dispose() }
            return [pscustomobject]@{ Kind = $Kind; Touched = @($name); Description = "$name truncated from $length to $to bytes" }
        }
        'AppendJunk' {
            $junk = [byte[]]::new(1 + $Random.Next(64))
            $Random.NextBytes($junk)
            $stream = [IO.File]::Open($path, 'Append')
            try { $stream.Write($junk, 0, $junk.Length) } finally { $stream.Dispose() }
            return [pscustomobject]@{ Kind = $Kind; Touched = @($name); Description = "$name ($length bytes): $($junk.Length) random bytes appended" }
        }
        'ZeroRange' {
            # A range with a byte that is not zero already, or the case would change nothing.
            $stream = [IO.File]::Open($path, 'Open', 'ReadWrite')
            try {
                for ($try = 0; $try -lt 20; $try++) {
                    $from = [long]($Random.NextInt64([Math]::Max(1, $length)))
                    $count = [int][Math]::Min($length - $from, 1 + $Random.Next(256))
                    $old = [byte[]]::new($count)
                    $stream.Position = $from
                    $stream.ReadExactly($old, 0, $count)
                    if ([Array]::FindIndex($old, [Predicate[byte]] { param($b) $b -ne 0 }) -ge 0) { break }
                }
                $stream.Position = $from
                $stream.Write([byte[]]::new($count), 0, $count)
            }
            finally { $stream.Dispose() }
            return [pscustomobject]@{ Kind = $Kind; Touched = @($name); Description = "$name ($length bytes): bytes $from to $($from + $count - 1) zeroed" }
        }
        'SwapFiles' {
            # Two files of different contents: one of the same kind when there is one (core-A and core-B), else any.
            $prefix = $name -replace '[-.].*$', ''
            $bytes = [IO.File]::ReadAllBytes($path)
            $others = @($targets | Where-Object { $_ -ne $name })
            $kin = @($others | Where-Object { ($_ -replace '[-.].*$', '') -eq $prefix })
            $pool = if ($kin.Count -gt 0 -and $Random.Next(2) -eq 0) { @(Get-Shuffled $Random $kin) + @(Get-Shuffled $Random @($others | Where-Object { $_ -notin $kin })) } else { Get-Shuffled $Random $others }
            $other = $null
            foreach ($candidate in $pool) {
                $otherPath = Join-Path $Working.Path $candidate
                if ([IO.FileInfo]::new($otherPath).Length -ne $bytes.Length -or
                    -not [Linq.Enumerable]::SequenceEqual([byte[]][IO.File]::ReadAllBytes($otherPath), [byte[]]$bytes)) { $other = $candidate; break }
            }
            $otherPath = Join-Path $Working.Path $other
            $swap = Join-Path $Working.Path 'swap.tmp'
            [IO.File]::Move($path, $swap)
            [IO.File]::Move($otherPath, $path)
            [IO.File]::Move($swap, $otherPath)
            return [pscustomobject]@{ Kind = $Kind; Touched = @($name, $other); Description = "$name and $other swapped" }
        }
    }
    throw "unknown byte mutation $Kind"
}

# The values and lists of an image in crit's JSON, found by a walk in C# (a walk in PowerShell took half a second for a
# core image of 762 values, longer than everything else a case does).
if (-not ('CriuPSFuzz.JsonParts' -as [type])) {
    Add-Type -ReferencedAssemblies System.Text.Json, System.Collections, System.Linq -TypeDefinition @'
using System.Collections.Generic;
using System.Text.Json.Nodes;

namespace CriuPSFuzz
{
    /// <summary>A value or a list of an image's JSON: where it sits (its owner, and its name or index there) and its crit path.</summary>
    public sealed class JsonPart
    {
        public JsonNode Owner;
        public string Name;
        public int Index = -1;
        public string Path;
        public JsonNode Node;

        public void Set(JsonNode value)
        {
            if (Index >= 0) { Owner.AsArray()[Index] = value; } else { Owner.AsObject()[Name] = value; }
        }
    }

    public static class JsonParts
    {
        public static void Collect(JsonNode node, string path, List<JsonPart> values, List<JsonPart> lists)
        {
            foreach (var (name, child) in node.AsObject())
            {
                string here = path.Length > 0 ? path + "." + name : name;
                if (here == "magic" || child is null) { continue; }
                if (child is JsonArray array)
                {
                    lists.Add(new JsonPart { Owner = node, Name = name, Path = here, Node = array });
                    for (int i = 0; i < array.Count; i++)
                    {
                        if (array[i] is JsonObject item) { Collect(item, here + "[" + i + "]", values, lists); }
                        else if (array[i] is not null) { values.Add(new JsonPart { Owner = array, Index = i, Path = here + "[" + i + "]", Node = array[i] }); }
                    }
                }
                else if (child is JsonObject) { Collect(child, here, values, lists); }
                else { values.Add(new JsonPart { Owner = node, Name = name, Path = here, Node = child }); }
            }
        }

        /// <summary>A JSON value as PowerShell sees numbers, strings and booleans.</summary>
        public static object Read(JsonNode value)
        {
            var element = value.GetValue<System.Text.Json.JsonElement>();
            switch (element.ValueKind)
            {
                case System.Text.Json.JsonValueKind.String: return element.GetString();
                case System.Text.Json.JsonValueKind.True: return true;
                case System.Text.Json.JsonValueKind.False: return false;
                default: return decimal.Parse(element.GetRawText(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        public static JsonNode Write(object value)
        {
            switch (value)
            {
                case string s: return JsonValue.Create(s);
                case bool b: return JsonValue.Create(b);
                case ulong u: return JsonValue.Create(u);
                case decimal d: return JsonValue.Create(d);
                default: return JsonValue.Create(System.Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture));
            }
        }
    }
}
'@
}

# The JSON text of an image file of the original, as Import-CheckpointImageFile reads it (once per file and run).
function Get-OriginalJson($Working, [string]$Name) {
    if (-not $Working.Json.ContainsKey($Name)) {
        $Working.Json[$Name] = Import-CheckpointImageFile -LiteralPath (Join-Path $Working.Original $Name) -ErrorAction Stop | ConvertTo-Json -Depth 32 -Compress
    }
    $Working.Json[$Name]
}

# A new value for a field: a boundary of its range, a neighbour of the old value or anything at all.
function Get-EditedValue([System.Random]$Random, $Old) {
    if ($Old -is [bool]) { return -not $Old }
    if ($Old -is [string] -and $Old -match '^0x[0-9a-f]+$') {
        $n = [decimal][Convert]::ToUInt64($Old.Substring(2), 16)
        $choices = @(0, 1, ($n + 1), ($n - 1), ($n + 4096), ($n - 4096), 0x800000000000, 0x7ffffffff000, [uint64]::MaxValue, (Get-RandomUInt64 $Random),
            [decimal]([uint64]$n -bxor [uint64](1L -shl $Random.Next(48))))
        # Wrapped to 64 bits, as the arithmetic of the machine wraps.
        $wrapped = ([decimal](Get-RandomItem $Random $choices) + [decimal]::Parse('18446744073709551616')) % [decimal]::Parse('18446744073709551616')
        return '0x{0:x}' -f [uint64]$wrapped
    }
    if ($Old -is [string] -and $Old -match '^[A-Z0-9_]+( \| [A-Z0-9_]+)*$') {
        # Flag names and enum values: any number, or none of them.
        return Get-RandomItem $Random @(0, 0xffffffff, $Random.Next(), (1 -shl $Random.Next(31)))
    }
    if ($Old -is [string] -and $Old -match '^[A-Za-z0-9+/]*=*\n?$' -and $Old.Length -ge 8 -and $Old.EndsWith("`n")) {
        # Bytes (crit's base64): one bit flipped, cut short, or none at all.
        $bytes = [Convert]::FromBase64String($Old)
        if ($bytes.Length -eq 0) { return '' }
        switch ($Random.Next(3)) {
            0 { $bytes[$Random.Next($bytes.Length)] = $bytes[$Random.Next($bytes.Length)] -bxor [byte](1 -shl $Random.Next(8)); return [Convert]::ToBase64String($bytes) }
            1 { return [Convert]::ToBase64String($bytes[0..($Random.Next($bytes.Length))]) }
            2 { return '' }
        }
    }
    if ($Old -is [string]) {
        return Get-RandomItem $Random @('', '/nonexistent/criups-fuzz', ('x' * 5000), "$Old$Old", 'a')
    }
    $n = [decimal]$Old
    $choices = @(0, 1, -1, ($n + 1), ($n - 1), ($n * 2), ($n + 4096), 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000, [long]::MaxValue, [uint64]::MaxValue,
        $Random.Next(), [decimal](Get-RandomUInt64 $Random), 4194304, 4194305)
    $chosen = [decimal](Get-RandomItem $Random $choices)
    if ($chosen -ge 0 -and $chosen -le [uint64]::MaxValue) { if ($chosen -le [long]::MaxValue) { [long]$chosen } else { [uint64]$chosen } }
    elseif ($chosen -lt 0 -and $chosen -ge [long]::MinValue) { [long]$chosen }
    else { [long]0 }
}

# Applies a value-level mutation of KIND through Import/Export; returns what it did, or $null when Export refused
# every value tried (it names the refused value with InvalidImageData; the count is kept in $Refusals).
function Invoke-ValueMutation([System.Random]$Random, $Working, [string]$Kind, [System.Collections.Generic.List[string]]$Refusals) {
    # Half of the edits re-record the file's digest (Export does, in an image with digests); half go to an image
    # without digests, as CRIU's come.
    $sealed = $Random.Next(2) -eq 0
    if (-not $sealed) { [IO.File]::Delete((Join-Path $Working.Path $script:Manifest)) }
    $targets = @($Working.ValueTargets | Where-Object { $sealed -or $_ -ne $script:Manifest })
    for ($try = 0; $try -lt 6; $try++) {
        $name = Get-RandomItem $Random $targets
        $path = Join-Path $Working.Path $name
        $image = [System.Text.Json.Nodes.JsonNode]::Parse((Get-OriginalJson $Working $name))
        $values = [System.Collections.Generic.List[CriuPSFuzz.JsonPart]]::new()
        $lists = [System.Collections.Generic.List[CriuPSFuzz.JsonPart]]::new()
        [CriuPSFuzz.JsonParts]::Collect($image, '', $values, $lists)
        $filled = @($lists | Where-Object { $_.Node.Count -gt 0 })
        $description = $null
        switch ($Kind) {
            'ValueEdit' {
                if ($values.Count -eq 0) { continue }
                $part = $values[$Random.Next($values.Count)]
                $old = [CriuPSFuzz.JsonParts]::Read($part.Node)
                $new = Get-EditedValue $Random $old
                $part.Set([CriuPSFuzz.JsonParts]::Write($new))
                $shown = if ($new -is [string] -and $new.Length -gt 40) { "'$($new.Substring(0, 20))...' ($($new.Length) characters)" } else { "'$new'" }
                $description = "${name}: $($part.Path) = $shown (was '$old')"
            }
            'RepeatEntry' {
                if ($filled.Count -eq 0) { continue }
                $list = Get-RandomItem $Random $filled
                $at = $Random.Next($list.Node.Count)
                $to = $Random.Next($list.Node.Count + 1)
                $list.Node.Insert($to, $list.Node[$at].DeepClone())
                $description = "${name}: $($list.Path)[$at] repeated as item $to of $($list.Node.Count)"
            }
            'RemoveEntry' {
                if ($filled.Count -eq 0) { continue }
                $list = Get-RandomItem $Random $filled
                $at = $Random.Next($list.Node.Count)
                $list.Node.RemoveAt($at)
                $description = "${name}: $($list.Path)[$at] removed, $($list.Node.Count) left"
            }
        }
        if ($null -eq $description) { continue }
        $image.ToJsonString() | Export-CheckpointImageFile -LiteralPath $path -Force -ErrorAction SilentlyContinue -ErrorVariable refused
        if ($refused.Count -gt 0) {
            if ($refused[0].FullyQualifiedErrorId -notlike 'InvalidImageData,*') {
                throw "Export-CheckpointImageFile failed with $($refused[0].FullyQualifiedErrorId) on $description`: $($refused[0])"
            }
            $Refusals.Add($description)
            continue
        }
        $state = if ($sealed) { 'digest recorded again' } else { 'no digests' }
        return [pscustomobject]@{ Kind = $Kind; Touched = @($name); Description = "$description; $state" }
    }
    $null
}

Export-ModuleMember -Function *
