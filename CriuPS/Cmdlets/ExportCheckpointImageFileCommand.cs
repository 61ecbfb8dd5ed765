using System.Management.Automation;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CriuPS.Engine.Errors;
using CriuPS.Engine.Images.Json;
using CriuPS.Engine.Model;

namespace CriuPS.Cmdlets;

/// <summary>
/// <para type="synopsis">Encodes objects or JSON text in crit's form into an image file (like crit encode).</para>
/// </summary>
[Cmdlet(VerbsData.Export, "CheckpointImageFile", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(FileInfo))]
public sealed class ExportCheckpointImageFileCommand : PSCmdlet
{
    // JSON text may come line by line (Get-Content x.json | ...): it is gathered and read at the end, as ConvertFrom-Json does.
    private readonly StringBuilder text = new();
    private int written;

    [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true)]
    public PSObject InputObject { get; set; } = null!;

    /// <summary>The file to write, taken as written (no wildcards: it is usually a new file).</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [Alias("FilePath", "LiteralPath")]
    public string Path { get; set; } = "";

    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        if (InputObject.BaseObject is string line)
        {
            text.AppendLine(line);
            return;
        }
        Export(() => ImageFileObjects.ToJson(InputObject));
    }

    protected override void EndProcessing()
    {
        if (text.Length > 0)
        {
            Export(ParseText);
        }
    }

    private JsonObject ParseText()
    {
        try
        {
            return JsonNode.Parse(text.ToString()) as JsonObject
                ?? throw new CheckpointException(CheckpointErrorKind.InvalidImageData, "Not a valid image: the JSON text is not an object with magic and entries.", null);
        }
        catch (JsonException e)
        {
            throw new CheckpointException(CheckpointErrorKind.InvalidImageData, $"Not a valid image: the text is not JSON: {e.Message}", null,
                "Give the JSON text of a whole image, such as ConvertTo-Json -Depth 32 writes it.", e);
        }
    }

    private void Export(Func<JsonObject> image)
    {
        string path = GetUnresolvedProviderPathFromPSPath(Path);
        JsonObject document;
        try
        {
            if (++written > 1)
            {
                throw new CheckpointException(CheckpointErrorKind.InvalidImageData, $"An image file holds one image; a second one was given for '{path}'.", path,
                    "Export each image object to a file of its own.");
            }
            document = image();
        }
        catch (Exception e)
        {
            WriteError(ErrorRecords.From(e, path));
            return;
        }
        if (!ShouldProcess(path, File.Exists(path) ? "Replace the image file" : "Write the image file"))
        {
            return;
        }
        try
        {
            ImageJson.Write(document, path, Force);
            // Written into a CriuPS image: its digests now record this file, or the restore would refuse the edit.
            if (ImageIntegrity.RecordDigest(path))
            {
                WriteVerbose($"Recorded the digest of {path} in the image's criups-digests.img.");
            }
        }
        catch (Exception e)
        {
            WriteError(ErrorRecords.From(e, path));
            return;
        }
        if (PassThru)
        {
            WriteObject(new FileInfo(path));
        }
    }
}
