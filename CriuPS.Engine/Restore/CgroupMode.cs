namespace CriuPS.Engine.Restore;

/// <summary>What a restore does with the saved cgroups (CRIU's --manage-cgroups, whose default is soft too).</summary>
public enum CgroupMode
{
    /// <summary>Leave every process in the restorer's cgroups; nothing is checked, made or joined.</summary>
    Ignore,

    /// <summary>Put every process and thread back into its cgroups; missing ones are made with their saved properties, existing ones joined as they are.</summary>
    Soft,

    /// <summary>As <see cref="Soft"/>, and the saved properties are written to existing cgroups too.</summary>
    Full,
}
